/*
 * llm_db.h - llm/'s tables in the shared SQLite database (module "llm"):
 * conversation history and daily usage for budgets. Numbered additive
 * migrations; each thread opens its own connection with llm_db_open.
 * Layer: llm, on common/mx_db.h.
 */
#ifndef LLM_DB_H
#define LLM_DB_H

#include <sqlite3.h>

#include "mx_err.h"

/* Opens path (mx_db_open) and applies the llm migrations. */
mx_err llm_db_open(const char *path, sqlite3 **out, char *err);

#endif
