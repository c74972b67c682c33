/*
 * mx_util.h - time, files and strings shared by every layer.
 * Lowest layer.
 */
#ifndef MX_UTIL_H
#define MX_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mx_buf.h"
#include "mx_err.h"

/* Wall-clock milliseconds since the epoch. */
int64_t mx_now_ms(void);
/* Monotonic milliseconds, for deadlines and durations. */
int64_t mx_mono_ms(void);
/* Monotonic microseconds, for short durations (metrics). */
int64_t mx_mono_us(void);

/* Reads a whole file (at most max bytes) into out. */
mx_err mx_file_read(const char *path, size_t max, struct mx_buf *out, char *err);
/* Writes atomically (temp file, fsync, rename) with the given mode. */
mx_err mx_file_write(const char *path, const void *data, size_t n, mode_t mode, char *err);
/* mkdir -p with mode for the directories it creates. */
mx_err mx_mkdir_p(const char *path, mode_t mode, char *err);
/* Joins dir and name into a malloc'd path; name absolute is returned as is. */
char *mx_path_join(const char *dir, const char *name);

/* The config file every subcommand reads: given (--config), else
 * $MXFLEET_CONFIG, else MXFLEET_DEFAULT_CONFIG (/etc/mxfleet/mxfleet.json,
 * set at build time). Borrowed. */
const char *mx_config_path(const char *given);

/* strdup that aborts on OOM is not our style: returns NULL on failure. */
char *mx_strdup(const char *s);
/* 1 when s is valid UTF-8 without NUL within n bytes. */
int mx_utf8_valid(const char *s, size_t n);
/* Strips trailing whitespace/newlines in place. */
void mx_rtrim(char *s);

#endif
