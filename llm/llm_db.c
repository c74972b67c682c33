/*
 * llm_db.c - migrations of module "llm"; see llm_db.h. Applied migrations
 * are never edited: add a new numbered one below.
 * Layer: llm, on common/mx_db.h.
 */
#include "llm_db.h"

#include "mx_db.h"

static const struct mx_migration migrations[] = {
    {1, "CREATE TABLE llm_history("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  device TEXT NOT NULL, room TEXT NOT NULL, thread TEXT NOT NULL,"
        "  msg TEXT NOT NULL, created_ms INTEGER NOT NULL);"
        "CREATE INDEX llm_history_key ON llm_history(device, room, thread, id);"
        "CREATE TABLE llm_usage("
        "  day TEXT NOT NULL, scope TEXT NOT NULL, subject TEXT NOT NULL,"
        "  tokens INTEGER NOT NULL DEFAULT 0, cost_micro INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY(day, scope, subject));"},
};

mx_err llm_db_open(const char *path, sqlite3 **out, char *err)
{
  sqlite3 *db = NULL;
  mx_err rc = mx_db_open(path, &db, err);
  if (rc)
    return rc;
  rc = mx_db_migrate(db, "llm", migrations, (int)(sizeof(migrations) / sizeof(migrations[0])), err);
  if (rc) {
    mx_db_close(db);
    return rc;
  }
  *out = db;
  return MX_OK;
}
