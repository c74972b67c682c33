/*
 * llm_router.c - provider chain, single retry layer, breakers, budgets; see
 * llm_router.h. Layer: llm; the only caller of llm_http_post for chat.
 * Retry policy lives in llm_retry.c (which statuses are transient and why).
 */
#include "llm_router.h"

#include <stdio.h>
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_breaker.h"
#include "llm_budget.h"
#include "llm_http.h"
#include "llm_retry.h"
#include "mx_crypto.h"
#include "mx_log.h"
#include "mx_util.h"

struct prov_stats {
  uint64_t ok, fail, retries;
  int64_t in_tokens, out_tokens;
  char last_error[160];
};

struct llm_router {
  const struct llm_config *cfg;
  pthread_mutex_t mu;
  struct llm_breaker *br;
  struct prov_stats *st;
  void (*sleep_fn)(void *ctx, int64_t ms);
  void *sleep_ctx;
};

static void real_sleep(void *ctx, int64_t ms)
{
  (void)ctx;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

mx_err llm_router_new(const struct llm_config *cfg, struct llm_router **out, char *err)
{
  struct llm_router *r = calloc(1, sizeof(*r));
  if (!r)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  r->cfg = cfg;
  r->br = calloc(cfg->nproviders, sizeof(*r->br));
  r->st = calloc(cfg->nproviders, sizeof(*r->st));
  if (!r->br || !r->st) {
    free(r->br);
    free(r->st);
    free(r);
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  }
  for (size_t i = 0; i < cfg->nproviders; i++)
    llm_breaker_init(&r->br[i], &cfg->providers[i].breaker);
  pthread_mutex_init(&r->mu, NULL);
  r->sleep_fn = real_sleep;
  *out = r;
  return MX_OK;
}

void llm_router_free(struct llm_router *r)
{
  if (!r)
    return;
  pthread_mutex_destroy(&r->mu);
  free(r->br);
  free(r->st);
  free(r);
}

void llm_router_set_sleep(struct llm_router *r, void (*fn)(void *ctx, int64_t ms), void *ctx)
{
  r->sleep_fn = fn ? fn : real_sleep;
  r->sleep_ctx = ctx;
}

static void failure_from_status(struct llm_failure *f, const struct llm_http_resp *resp)
{
  char type[32], code[32];
  f->status = resp->status;
  f->retry_after_ms = resp->retry_after_ms;
  f->should_retry = resp->should_retry;
  llm_copy(f->request_id, sizeof(f->request_id), resp->request_id);
  llm_provider_error(mx_buf_cstr(&resp->body), type, sizeof(type), code, sizeof(code), f->message,
                     sizeof(f->message));
  /* The code (insufficient_quota) says more than the type (insufficient_quota
   * or a generic one); keep both visible to the classifier. */
  char both[sizeof(type) + sizeof(code) + 1];
  snprintf(both, sizeof(both), "%s%s%s", type, code[0] ? "/" : "", code);
  llm_copy(f->type, sizeof(f->type), both);
}

/* Turns a 2xx answer into a reply, or describes why it is not one: an
 * error event after 200 (typed: classified by its type) or a cut stream
 * (untyped: status 0, transient). */
static mx_err read_answer(struct llm_acc *acc, const struct llm_http_resp *resp,
                          struct llm_reply *out, struct llm_failure *f, char *err)
{
  mx_err rc = MX_OK;
  if (!resp->streamed)
    rc = llm_acc_body(acc, mx_buf_cstr(&resp->body), err);
  if (!rc)
    rc = llm_acc_finish(acc, resp->streamed, out, err);
  if (rc) {
    f->status = acc->failed ? 200 : 0;
    f->got_token = acc->got_token;
    llm_copy(f->type, sizeof(f->type), acc->err_type);
  }
  return rc;
}

/* One HTTP attempt. MX_OK with *out filled, or a failure description. */
static mx_err attempt(const struct llm_provider_cfg *p, const struct llm_call_ctx *cx,
                      const struct llm_chat_req *req, struct llm_reply *out, struct llm_failure *f)
{
  struct mx_buf url = MX_BUF_INIT(4096), body = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  struct curl_slist *hdr = NULL;
  struct llm_http_resp resp;
  struct llm_acc acc;
  char err[MX_ERRBUF_LEN] = "";
  llm_http_resp_init(&resp);
  llm_acc_init(&acc, p->kind);
  memset(f, 0, sizeof(*f));
  f->retry_after_ms = -1;
  f->should_retry = -1;
  mx_err rc = llm_provider_build(p, req, p->stream, &url, &hdr, &body, err);
  int64_t timeout = p->timeout_ms;
  if (cx->deadline_mono_ms) {
    int64_t left = cx->deadline_mono_ms - mx_mono_ms();
    timeout = left < timeout ? (left < 100 ? 100 : left) : timeout;
  }
  struct llm_http_req hr = {mx_buf_cstr(&url), hdr, mx_buf_cstr(&body), p->connect_timeout_ms, timeout,
                            p->idle_timeout_ms, p->stream ? llm_acc_line : NULL, &acc};
  if (!rc) {
    mx_debug(NULL, "llm request provider=%s url=%s stream=%d bytes=%zu", p->name, mx_buf_cstr(&url), p->stream,
             body.len);
    rc = llm_http_post(&hr, &resp, err);
    f->got_token = acc.got_token; /* no HTTP answer or a cut: status 0, transient */
  }
  if (!rc && (resp.status < 200 || resp.status >= 300)) {
    failure_from_status(f, &resp);
    rc = MX_ERR_HTTP;
  } else if (!rc) {
    rc = read_answer(&acc, &resp, out, f, err);
  }
  if (rc && !f->message[0])
    llm_copy(f->message, sizeof(f->message), err);
  llm_acc_release(&acc);
  llm_http_resp_release(&resp);
  curl_slist_free_all(hdr);
  mx_buf_release(&url);
  mx_buf_release(&body);
  return rc;
}

void llm_redact_secrets(char *msg, const char *key)
{
  /* The whole key wherever it appears (some servers echo it back). */
  size_t kl = key ? strlen(key) : 0;
  char *hit;
  while (kl >= 8 && (hit = strstr(msg, key)) != NULL) {
    memset(hit, '*', kl);
  }
  /* Anything shaped like an OpenAI/Anthropic key ("sk-..."), even partial. */
  for (char *p = msg; (p = strstr(p, "sk-")) != NULL; p += 3) {
    if (p > msg && (isalnum((unsigned char)p[-1]) || p[-1] == '-' || p[-1] == '_'))
      continue; /* "task-list" is not a key */
    char *q = p + 3;
    while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '-' ||
           *q == '_' || *q == '*')
      *q++ = '*';
  }
}

static void describe(const struct llm_failure *f, char *out, size_t n)
{
  if (f->status)
    snprintf(out, n, "HTTP %ld%s%s%s%.100s", f->status, f->type[0] ? " " : "", f->type, f->message[0] ? ": " : "",
             f->message);
  else
    snprintf(out, n, "%.150s", f->message);
}

static double jitter(void)
{
  uint32_t v = 0;
  if (mx_random_bytes(&v, sizeof(v)))
    return 0.5;
  return (double)v / 4294967296.0;
}

/* Retries one provider. Returns MX_OK, MX_ERR_UNAVAILABLE for a spent
 * budget (stop everything), or MX_ERR_HTTP (try the next provider). */
static mx_err try_provider(struct llm_router *r, size_t pi, const struct llm_call_ctx *cx,
                           const struct llm_chat_req *req, struct llm_reply *out, char *why, size_t whyn, char *err)
{
  const struct llm_provider_cfg *p = &r->cfg->providers[pi];
  struct llm_failure f;
  for (int n = 1; n <= p->retry.max_attempts; n++) {
    if (cx->db && llm_budget_check(cx->db, &r->cfg->budgets, cx->device, cx->operator_id, mx_now_ms(), err)) {
      pthread_mutex_lock(&r->mu);
      r->br[pi].probing = 0; /* give the half-open probe back unused */
      pthread_mutex_unlock(&r->mu);
      return MX_ERR_UNAVAILABLE;
    }
    if (attempt(p, cx, req, out, &f) == MX_OK) {
      pthread_mutex_lock(&r->mu);
      llm_breaker_success(&r->br[pi]);
      r->st[pi].ok++;
      r->st[pi].in_tokens += out->in_tokens;
      r->st[pi].out_tokens += out->out_tokens;
      pthread_mutex_unlock(&r->mu);
      if (cx->db && llm_budget_charge(cx->db, cx->device, cx->operator_id, mx_now_ms(),
                                      out->in_tokens + out->out_tokens,
                                      llm_budget_cost(p, out->in_tokens, out->out_tokens), err))
        mx_warn(NULL, "llm budget not charged: %s", err);
      return MX_OK;
    }
    describe(&f, why, whyn);
    llm_redact_secrets(why, p->api_key);
    mx_warn(NULL, "llm provider=%s attempt=%d request-id=%s failed: %s", p->name, n,
            f.request_id[0] ? f.request_id : "-", why);
    pthread_mutex_lock(&r->mu);
    llm_breaker_failure(&r->br[pi], mx_mono_ms());
    r->st[pi].fail++;
    llm_copy(r->st[pi].last_error, sizeof(r->st[pi].last_error), why);
    int open = r->br[pi].state == LLM_BREAKER_OPEN;
    pthread_mutex_unlock(&r->mu);
    if (open || llm_retry_classify(&f) == LLM_PERMANENT || n == p->retry.max_attempts)
      break;
    int64_t delay = llm_retry_delay_ms(&p->retry, n, &f, jitter());
    if (delay < 0 || (cx->deadline_mono_ms && mx_mono_ms() + delay >= cx->deadline_mono_ms))
      break; /* asked to wait too long, or past the turn's deadline: fall over */
    pthread_mutex_lock(&r->mu);
    r->st[pi].retries++;
    pthread_mutex_unlock(&r->mu);
    r->sleep_fn(r->sleep_ctx, delay);
  }
  return MX_ERR_HTTP;
}

mx_err llm_router_chat(struct llm_router *r, const struct llm_call_ctx *cx, const struct llm_chat_req *req,
                       struct llm_reply *out, char *provider, char *err)
{
  const struct llm_route *route = llm_config_route(r->cfg, cx->device);
  if (!route)
    return mx_fail(MX_ERR_CONFIG, err, "no model route for device '%s' and no default route", cx->device);
  struct mx_buf why_all = MX_BUF_INIT(4096);
  mx_err rc = MX_ERR_UNAVAILABLE;
  for (size_t k = 0; k < route->nchain; k++) {
    size_t pi = route->chain[k];
    const char *name = r->cfg->providers[pi].name;
    char why[256] = "";
    pthread_mutex_lock(&r->mu);
    int ok = llm_breaker_allow(&r->br[pi], mx_mono_ms());
    pthread_mutex_unlock(&r->mu);
    if (!ok) {
      snprintf(why, sizeof(why), "circuit open after repeated failures");
    } else {
      rc = try_provider(r, pi, cx, req, out, why, sizeof(why), err);
      if (rc == MX_OK && provider)
        llm_copy(provider, 64, name);
      if (rc == MX_OK || rc == MX_ERR_UNAVAILABLE)
        goto done;
      if (k + 1 < route->nchain)
        mx_info(NULL, "llm falling over from provider=%s", name);
    }
    if (mx_buf_addf(&why_all, "%s%s: %s", why_all.len ? "; " : "", name, why))
      break;
  }
  rc = mx_fail(MX_ERR_UNAVAILABLE, err, "no model provider could answer (%s)", mx_buf_cstr(&why_all));
done:
  mx_buf_release(&why_all);
  return rc;
}

mx_err llm_router_chat_one(struct llm_router *r, const struct llm_call_ctx *cx, size_t provider_index,
                           const struct llm_chat_req *req, struct llm_reply *out, char *err)
{
  if (provider_index >= r->cfg->nproviders)
    return mx_fail(MX_ERR_NOT_FOUND, err, "no provider number %zu", provider_index);
  char why[256] = "";
  mx_err rc = try_provider(r, provider_index, cx, req, out, why, sizeof(why), err);
  if (rc == MX_ERR_HTTP)
    return mx_fail(rc, err, "%s", why);
  return rc;
}

mx_err llm_router_status_text(struct llm_router *r, struct mx_buf *out)
{
  mx_err rc = MX_OK;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; !rc && i < r->cfg->nproviders; i++) {
    const struct llm_provider_cfg *p = &r->cfg->providers[i];
    const struct prov_stats *s = &r->st[i];
    rc = mx_buf_addf(out, "- %s (%s, %s): breaker %s, %llu ok, %llu failed, %llu retries%s%s\n", p->name,
                     llm_kind_name(p->kind), p->model, llm_breaker_state_name(r->br[i].state),
                     (unsigned long long)s->ok, (unsigned long long)s->fail, (unsigned long long)s->retries,
                     s->last_error[0] ? ", last error: " : "", s->last_error);
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

mx_err llm_router_metrics(struct llm_router *r, struct mx_buf *out)
{
  mx_err rc = mx_buf_adds(out,
                          "# HELP mxfleet_llm_breaker_state Circuit breaker per provider: 0 closed, 1 open, 2 half-open\n"
                          "# TYPE mxfleet_llm_breaker_state gauge\n");
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; !rc && i < r->cfg->nproviders; i++)
    rc = mx_buf_addf(out, "mxfleet_llm_breaker_state{provider=\"%s\"} %d\n", r->cfg->providers[i].name,
                     (int)r->br[i].state);
  if (!rc)
    rc = mx_buf_adds(out, "# HELP mxfleet_llm_requests_total Model calls per provider and result\n"
                          "# TYPE mxfleet_llm_requests_total counter\n");
  for (size_t i = 0; !rc && i < r->cfg->nproviders; i++)
    rc = mx_buf_addf(out,
                     "mxfleet_llm_requests_total{provider=\"%s\",result=\"ok\"} %llu\n"
                     "mxfleet_llm_requests_total{provider=\"%s\",result=\"error\"} %llu\n",
                     r->cfg->providers[i].name, (unsigned long long)r->st[i].ok, r->cfg->providers[i].name,
                     (unsigned long long)r->st[i].fail);
  if (!rc)
    rc = mx_buf_adds(out, "# HELP mxfleet_llm_breaker_opens_total Times the breaker opened\n"
                          "# TYPE mxfleet_llm_breaker_opens_total counter\n");
  for (size_t i = 0; !rc && i < r->cfg->nproviders; i++)
    rc = mx_buf_addf(out, "mxfleet_llm_breaker_opens_total{provider=\"%s\"} %llu\n", r->cfg->providers[i].name,
                     (unsigned long long)r->br[i].opens);
  if (!rc)
    rc = mx_buf_adds(out, "# HELP mxfleet_llm_tokens_total Tokens reported by providers\n"
                          "# TYPE mxfleet_llm_tokens_total counter\n");
  for (size_t i = 0; !rc && i < r->cfg->nproviders; i++)
    rc = mx_buf_addf(out,
                     "mxfleet_llm_tokens_total{provider=\"%s\",direction=\"input\"} %lld\n"
                     "mxfleet_llm_tokens_total{provider=\"%s\",direction=\"output\"} %lld\n",
                     r->cfg->providers[i].name, (long long)r->st[i].in_tokens, r->cfg->providers[i].name,
                     (long long)r->st[i].out_tokens);
  pthread_mutex_unlock(&r->mu);
  return rc;
}
