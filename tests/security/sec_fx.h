/*
 * tests/security/sec_fx.h - the fixture of the security corpus: a real
 * engine (schema, manifest, approvals, SQLite audit chain, redactor) over
 * the local backend in a temporary tree, and an operator stand-in that
 * approves, denies or never answers. Every case asserts two things: nothing
 * ran (a marker file is absent, a target unchanged) and the audit recorded
 * the refusal. Header-only, static functions; "$D" in a manifest or
 * argument template is replaced by the tree's directory.
 * Tree: $D/srv (readable root), $D/srv/data (writable root), $D/var (state).
 */
#ifndef SEC_FX_H
#define SEC_FX_H

#include <pthread.h>

#include "dev_local.h"
#include "mx_json.h"
#include "mx_util.h"
#include "tools_engine.h"
#include "tools_test_util.h"

enum sec_answer { SEC_APPROVE, SEC_DENY, SEC_NOBODY };

struct sec_fx {
  char dir[128];
  struct tools_manifest *m;
  struct dev_backend *b;
  struct tools_audit *audit;
  struct tools_approvals *ap;
  struct tools_redactor *red;
  struct tools_engine *e;
  enum sec_answer answer;
  int notices;
  char notice[4096]; /* tool, args and risk of the last notice */
  char last_id[TOOLS_ACTION_ID_LEN + 1];
  pthread_t th;
  int started;
};

static const struct tools_origin sec_op = {.operator_mxid = "@op:example.org", .operator_device = "PHONE1",
                                           .verification = "verified", .room_id = "!dm:example.org",
                                           .event_id = "$ev1"};

/* Copies tmpl to out with every "$D" replaced by the tree's directory. */
static inline char *sec_expand(const struct sec_fx *f, const char *tmpl, char *out, size_t n)
{
  size_t o = 0;
  for (const char *p = tmpl; *p && o + 1 < n; p++) {
    if (p[0] == '$' && p[1] == 'D') {
      o += (size_t)snprintf(out + o, n - o, "%s", f->dir);
      p++;
    } else
      out[o++] = *p;
  }
  out[o < n ? o : n - 1] = '\0';
  return out;
}

static void *sec_decide(void *arg)
{
  struct sec_fx *f = arg;
  usleep(20000);
  if (f->answer != SEC_NOBODY)
    tools_approvals_decide(f->ap, f->last_id, "@op:example.org", 1,
                           f->answer == SEC_APPROVE ? TOOLS_VERDICT_APPROVE : TOOLS_VERDICT_DENY, "reaction", NULL);
  return NULL;
}

static mx_err sec_post_notice(void *ctx, const struct tools_pending *p, char **notice_event_id, char *err)
{
  (void)err;
  struct sec_fx *f = ctx;
  f->notices++;
  snprintf(f->last_id, sizeof(f->last_id), "%s", p->id);
  snprintf(f->notice, sizeof(f->notice), "%s %s %s", p->tool, p->args_json, p->risk);
  *notice_event_id = mx_strdup("$notice");
  f->started = pthread_create(&f->th, NULL, sec_decide, f) == 0;
  return MX_OK;
}

/* (Re)builds manifest, backend and engine from a manifest template. */
static inline void sec_engine(struct sec_fx *f, const char *manifest_tmpl, int64_t ttl_ms)
{
  char json[8192], err[MX_ERRBUF_LEN];
  cJSON *j = cJSON_Parse(sec_expand(f, manifest_tmpl, json, sizeof(json)));
  assert_non_null(j);
  tools_engine_free(f->e);
  f->e = NULL;
  if (f->b)
    f->b->destroy(f->b);
  tools_manifest_free(f->m);
  f->m = NULL;
  assert_int_equal(tools_policy_parse(j, "sec.json", &f->m, err), MX_OK);
  cJSON_Delete(j);
  struct dev_local_opts lo = {0};
  lo.open_path = tools_policy_open_cb;
  lo.open_ctx = f->m;
  assert_int_equal(dev_local_new(&lo, &f->b, err), MX_OK);
  struct tools_engine_opts o = {0};
  o.device = "pc1";
  o.manifest = f->m;
  o.backend = f->b;
  o.audit = f->audit;
  o.approvals = f->ap;
  o.redactor = f->red;
  o.approver.ctx = f;
  o.approver.post_notice = sec_post_notice;
  o.approval_ttl_ms = ttl_ms;
  assert_int_equal(tools_engine_new(&o, &f->e, err), MX_OK);
}

/* A manifest enabling the file tools and the given command rules. */
#define SEC_MANIFEST(rules, tools)                                                                            \
  "{\"version\":1,\"paths\":{\"read\":[\"$D/srv\"],\"write\":[\"$D/srv/data\"]},"                          \
  "\"commands\":{\"allow\":[" rules "]},"                                                                   \
  "\"tools\":{\"fs.read\":{\"timeout_ms\":3000},\"fs.list\":{},\"fs.stat\":{},"                              \
  "\"fs.write\":{\"timeout_ms\":3000},\"shell.exec\":{\"timeout_ms\":5000}" tools "}}"

static inline int sec_setup(void **state)
{
  struct sec_fx *f = calloc(1, sizeof(*f));
  char p[512], err[MX_ERRBUF_LEN];
  assert_non_null(tt_tmpdir(f->dir, sizeof(f->dir), "sec"));
  tt_mkdir(f->dir, "var");
  tt_mkdir(f->dir, "srv");
  tt_mkdir(f->dir, "srv/data");
  tt_path(p, sizeof(p), f->dir, "var");
  struct tools_audit_opts ao = {p, "pc1", NULL};
  assert_int_equal(tools_audit_open(&ao, &f->audit, err), MX_OK);
  tt_path(p, sizeof(p), f->dir, "var/mxfleet.db");
  assert_int_equal(tools_approvals_open(p, &f->ap, err), MX_OK);
  assert_int_equal(tools_redact_new("0123456789abcdef0123456789abcdef", 32, &f->red, err), MX_OK);
  f->answer = SEC_DENY;
  sec_engine(f, SEC_MANIFEST("", ""), 0);
  *state = f;
  return 0;
}

static inline void sec_join(struct sec_fx *f)
{
  if (f->started)
    pthread_join(f->th, NULL);
  f->started = 0;
}

static inline int sec_teardown(void **state)
{
  struct sec_fx *f = *state;
  sec_join(f);
  tools_engine_free(f->e);
  f->b->destroy(f->b);
  tools_manifest_free(f->m);
  tools_audit_close(f->audit);
  tools_approvals_close(f->ap);
  tools_redact_free(f->red);
  tt_rmtree(f->dir);
  free(f);
  return 0;
}

/* One call through the engine; args_tmpl may use "$D". */
static inline void sec_call(struct sec_fx *f, const char *tool, const char *args_tmpl, struct tools_outcome *out)
{
  char args[8192], err[MX_ERRBUF_LEN];
  assert_int_equal(tools_engine_call(f->e, &sec_op, "sec-call", tool, sec_expand(f, args_tmpl, args, sizeof(args)),
                                     out, err),
                   MX_OK);
  sec_join(f);
}

/* The status of the newest audit record ("denied", "refused", "ok" ...). */
static inline char *sec_last_status(struct sec_fx *f, char *buf, size_t n)
{
  cJSON *r = NULL;
  char err[MX_ERRBUF_LEN];
  assert_int_equal(tools_audit_recent(f->audit, 0, &r, err), MX_OK);
  const char *s = mx_json_str(cJSON_GetArrayItem(r, cJSON_GetArraySize(r) - 1), "status");
  snprintf(buf, n, "%s", s ? s : "(none)");
  cJSON_Delete(r);
  return buf;
}

/* Asserts the newest audit record says the call did not run. */
#define sec_assert_audit_refused(f)                                                                           \
  do {                                                                                                      \
    char st_[32];                                                                                           \
    sec_last_status((f), st_, sizeof(st_));                                                                 \
    if (strcmp(st_, "denied") != 0 && strcmp(st_, "refused") != 0 && strcmp(st_, "rejected") != 0)          \
      fail_msg("audit: expected a denied/refused/rejected record, got '%s'", st_);                         \
  } while (0)

/* One call that must be refused by the manifest or the device: denied,
 * its text holds want (when given) and never leak (when given), and the
 * audit's newest record says it did not run. */
static inline void sec_expect_refused(struct sec_fx *f, const char *tool, const char *args_tmpl, const char *want,
                                      const char *leak)
{
  struct tools_outcome out;
  sec_call(f, tool, args_tmpl, &out);
  if (out.status != TOOLS_OUT_DENIED)
    fail_msg("%s %s: expected denied, got %s: %s", tool, args_tmpl, tools_outcome_status_str(out.status), out.text);
  if ((want && !strstr(out.text, want)) || (leak && strstr(out.text, leak)))
    fail_msg("%s %s: unexpected text: %s", tool, args_tmpl, out.text);
  tools_outcome_release(&out);
  sec_assert_audit_refused(f);
}

/* 1 when $D/rel exists (without following a final symlink). */
static inline int sec_exists(const struct sec_fx *f, const char *rel)
{
  char p[512];
  struct stat st;
  tt_path(p, sizeof(p), f->dir, rel);
  return lstat(p, &st) == 0;
}

#endif
