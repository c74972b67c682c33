/* mx_log.c - one structured, redacted line per event; see mx_log.h. */
#include "mx_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mx_buf.h"

static _Atomic int log_level = MX_LOG_INFO;
static _Atomic int log_fd = 2;
static mx_log_filter_fn log_filter;
static void *log_filter_ctx;

void mx_log_set_level(enum mx_log_level level) { log_level = (int)level; }
enum mx_log_level mx_log_get_level(void) { return (enum mx_log_level)log_level; }
void mx_log_set_fd(int fd) { log_fd = fd < 0 ? 2 : fd; }

void mx_log_set_filter(mx_log_filter_fn fn, void *ctx)
{
  log_filter = fn;
  log_filter_ctx = ctx;
}

mx_err mx_log_parse_level(const char *s, enum mx_log_level *out)
{
  static const char *names[] = { "debug", "info", "warn", "error" };
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = (enum mx_log_level)i;
      return MX_OK;
    }
  }
  return MX_ERR_INVALID;
}

static const char *level_name(enum mx_log_level l)
{
  switch (l) {
  case MX_LOG_DEBUG: return "debug";
  case MX_LOG_INFO: return "info";
  case MX_LOG_WARN: return "warn";
  case MX_LOG_ERROR: return "error";
  }
  return "info";
}

/* systemd connects stderr to the journal and says so in JOURNAL_STREAM
 * ("DEVICE:INODE" of that stream, sd_journal_stream_fd(3)); only then does a
 * "<N>" prefix (sd-daemon.h: 3 err, 4 warning, 6 info, 7 debug) set the
 * line's priority instead of showing up as text. Checked per line: the fd
 * may be redirected (mx_log_set_fd) and an fstat is cheap next to a write. */
static int to_journal(int fd)
{
  const char *js = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st) != 0)
    return 0;
  return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int syslog_priority(enum mx_log_level l)
{
  switch (l) {
  case MX_LOG_DEBUG: return 7;
  case MX_LOG_INFO: return 6;
  case MX_LOG_WARN: return 4;
  case MX_LOG_ERROR: return 3;
  }
  return 6;
}

/* Quotes msg so one event is always one line: newlines and quotes escaped. */
static mx_err add_quoted(struct mx_buf *b, const char *msg)
{
  mx_err rc = mx_buf_addc(b, '"');
  for (const char *p = msg; !rc && *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\')
      rc = mx_buf_addf(b, "\\%c", c);
    else if (c == '\n')
      rc = mx_buf_adds(b, "\\n");
    else if (c < 0x20)
      rc = mx_buf_addf(b, "\\x%02x", c);
    else
      rc = mx_buf_addc(b, (char)c);
  }
  return rc ? rc : mx_buf_addc(b, '"');
}

void mx_log(enum mx_log_level level, const char *identity, const char *fmt, ...)
{
  if ((int)level < log_level)
    return;
  struct mx_buf msg = MX_BUF_INIT(MX_BUF_MAX_SMALL);
  va_list ap;
  va_start(ap, fmt);
  mx_err rc = mx_buf_vaddf(&msg, fmt, ap);
  va_end(ap);
  if (rc)
    return;

  struct timespec ts;
  struct tm tm;
  char when[40];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

  struct mx_buf line = MX_BUF_INIT(MX_BUF_MAX_SMALL + 256);
  int fd = log_fd;
  if (to_journal(fd))
    rc = mx_buf_addf(&line, "<%d>", syslog_priority(level));
  if (!rc)
    rc = mx_buf_addf(&line, "%s.%03ldZ level=%s id=%s msg=", when, ts.tv_nsec / 1000000L, level_name(level),
                     identity && *identity ? identity : "-");
  if (!rc)
    rc = add_quoted(&line, mx_buf_cstr(&msg));
  mx_buf_release(&msg);
  if (rc)
    return;

  char *out = line.buf;
  char *redacted = log_filter ? log_filter(log_filter_ctx, out) : NULL;
  if (redacted)
    out = redacted;
  size_t n = strlen(out);
  /* One write per line keeps lines from different threads whole. */
  char *withnl = malloc(n + 2);
  if (withnl) {
    memcpy(withnl, out, n);
    withnl[n] = '\n';
    ssize_t w = write(fd, withnl, n + 1);
    (void)w;
    free(withnl);
  }
  free(redacted);
  mx_buf_release(&line);
}
