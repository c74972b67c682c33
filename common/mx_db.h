/*
 * mx_db.h - the one SQLite database under data_dir: WAL mode, mode 0600,
 * busy timeout, and numbered additive migrations owned by each module
 * (bot, crypto, llm, tools...). A module's migrations are applied in order
 * at start and recorded in schema_versions(module, version); an applied
 * migration is never edited, only followed by a new one.
 * Lowest layer: knows nothing of the modules that use it.
 */
#ifndef MX_DB_H
#define MX_DB_H

#include <sqlite3.h>

#include "mx_err.h"

struct mx_migration {
  int version;      /* 1, 2, 3 ... without gaps */
  const char *sql;  /* one or more statements */
};

/* Opens (creating with mode 0600) path; WAL, foreign keys, 5 s busy timeout.
 * Each thread opens its own handle. */
mx_err mx_db_open(const char *path, sqlite3 **out, char *err);
/* Same, and a new (empty) database gets page_size-byte pages. */
mx_err mx_db_open_paged(const char *path, int page_size, sqlite3 **out, char *err);
void mx_db_close(sqlite3 *db);
/* Applies the module's steps not applied yet. A database whose module is at
 * a version above n (written by a newer mxfleet) is refused with
 * MX_ERR_CONFLICT naming both versions; nothing is changed. */
mx_err mx_db_migrate(sqlite3 *db, const char *module, const struct mx_migration *m, int n, char *err);
mx_err mx_db_exec(sqlite3 *db, const char *sql, char *err);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
mx_err mx_db_begin(sqlite3 *db, char *err);
mx_err mx_db_commit(sqlite3 *db, char *err);
void mx_db_rollback(sqlite3 *db);
/* Prepares sql or fails with the SQLite message in err. */
mx_err mx_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err);

/*
 * Binds arguments by a type string and steps once: 's' text (NULL binds
 * NULL), 'i' int64_t, 'd' int. For statements without result rows, or to
 * read the first row with mx_db_query.
 */
mx_err mx_db_run(sqlite3 *db, char *err, const char *sql, const char *types, ...);
/* Like mx_db_run but leaves the prepared statement positioned on the first
 * row: returns MX_OK with *st set when a row exists (finalize it),
 * MX_ERR_NOT_FOUND when there is none. */
mx_err mx_db_query(sqlite3 *db, sqlite3_stmt **st, char *err, const char *sql, const char *types, ...);
/* Column as a malloc'd string (NULL for SQL NULL). */
char *mx_db_col_str(sqlite3_stmt *st, int col);

#endif
