/*
 * mx_log.h - structured log lines to stderr, one line per event:
 *   2026-11-21T19:56:05.123Z level=info id=pc1 msg="sync live" key=value ...
 *
 * Every line passes through the redaction filter installed with
 * mx_log_set_filter() (the bot installs the tools/ redactor at start), so a
 * secret that slips into a message is still replaced before it is written.
 * Under systemd (stderr is the journal: JOURNAL_STREAM names it) each line
 * starts with its priority, "<3>" error ... "<7>" debug, as sd-daemon.h does.
 * Thread-safe: each line is formatted privately and written with one write().
 * Lowest layer; must not call anything above common/.
 */
#ifndef MX_LOG_H
#define MX_LOG_H

#include "mx_err.h"

enum mx_log_level { MX_LOG_DEBUG = 0, MX_LOG_INFO, MX_LOG_WARN, MX_LOG_ERROR };

/* Returns a malloc'd redacted copy of line, or NULL to keep it as is. */
typedef char *(*mx_log_filter_fn)(void *ctx, const char *line);

void mx_log_set_level(enum mx_log_level level);
enum mx_log_level mx_log_get_level(void);
/* Parses "debug|info|warn|error"; returns MX_ERR_INVALID otherwise. */
mx_err mx_log_parse_level(const char *s, enum mx_log_level *out);
void mx_log_set_filter(mx_log_filter_fn fn, void *ctx);
/* Redirects output (tests); fd -1 restores stderr. */
void mx_log_set_fd(int fd);

/* identity may be NULL ("-"). fmt is the message text; it is quoted. */
void mx_log(enum mx_log_level level, const char *identity, const char *fmt, ...) MX_PRINTF(3, 4);

#define mx_debug(id, ...) mx_log(MX_LOG_DEBUG, (id), __VA_ARGS__)
#define mx_info(id, ...) mx_log(MX_LOG_INFO, (id), __VA_ARGS__)
#define mx_warn(id, ...) mx_log(MX_LOG_WARN, (id), __VA_ARGS__)
#define mx_error(id, ...) mx_log(MX_LOG_ERROR, (id), __VA_ARGS__)

#endif
