/*
 * llm_agent.c - the agent turn; see llm_agent.h. Orchestrates history
 * (llm_history.c), the system prompt (llm_prompt.c), model calls
 * (llm_router.c), tool rounds (llm_runner.c) and loop safety
 * (llm_loop_util.c). Layer: llm; never calls the bot or Matrix.
 * Each turn opens its own SQLite connection (one per thread).
 */
#include "llm_agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_db.h"
#include "llm_history.h"
#include "llm_loop_util.h"
#include "llm_markdown.h"
#include "llm_prompt.h"
#include "llm_runner.h"
#include "mx_db.h"
#include "mx_log.h"
#include "mx_util.h"

struct llm_agent {
  const struct llm_config *cfg;
  char *db_path;
  struct llm_router *router;
};

/* Everything one turn carries between its steps. */
struct turn {
  struct llm_agent *a;
  const struct llm_turn_req *req;
  const struct llm_sink *sink;
  sqlite3 *db;
  struct llm_conv conv;
  size_t keep_from;          /* first message of this turn */
  struct mx_buf system;
  const struct llm_tool_spec *specs;
  size_t nspecs;
  const char **names;
  struct llm_stuck stuck;
  int told_bad_args;
  int tool_rounds;
  int64_t deadline;
  struct llm_turn_result *out;
};

mx_err llm_agent_new(const struct llm_config *cfg, const char *db_path, struct llm_agent **out, char *err)
{
  struct llm_agent *a = calloc(1, sizeof(*a));
  if (!a || !(a->db_path = mx_strdup(db_path))) {
    free(a);
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  }
  a->cfg = cfg;
  sqlite3 *db = NULL;
  mx_err rc = llm_db_open(db_path, &db, err); /* migrate once, up front */
  mx_db_close(db);
  if (!rc)
    rc = llm_router_new(cfg, &a->router, err);
  if (rc) {
    free(a->db_path);
    free(a);
    return rc;
  }
  *out = a;
  return MX_OK;
}

void llm_agent_free(struct llm_agent *a)
{
  if (!a)
    return;
  llm_router_free(a->router);
  free(a->db_path);
  free(a);
}

struct llm_router *llm_agent_router(struct llm_agent *a)
{
  return a->router;
}

void llm_turn_result_free(struct llm_turn_result *r)
{
  free(r->markdown);
  free(r->html);
  memset(r, 0, sizeof(*r));
}

mx_err llm_history_reset(struct llm_agent *a, const char *device, const char *room_id, const char *thread_id,
                         char *err)
{
  sqlite3 *db = NULL;
  mx_err rc = llm_db_open(a->db_path, &db, err);
  if (!rc)
    rc = llm_history_clear(db, device, room_id, thread_id ? thread_id : "", err);
  mx_db_close(db);
  return rc;
}

static void progress(const struct turn *t, const char *text)
{
  if (t->sink && t->sink->progress)
    t->sink->progress(t->sink->ctx, text);
}

/* Sets the answer (or the operator-facing failure) and its HTML. */
static mx_err finish(struct turn *t, const char *md, int failed)
{
  struct mx_buf html = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  t->out->failed = failed;
  t->out->markdown = mx_strdup(md);
  mx_err rc = t->out->markdown ? llm_markdown_to_html(md, &html) : MX_ERR_NOMEM;
  if (!rc)
    t->out->html = mx_buf_take(&html);
  mx_buf_release(&html);
  return (rc || !t->out->html) ? MX_ERR_NOMEM : MX_OK;
}

static mx_err fail_turn(struct turn *t, mx_err code, const char *fmt, const char *detail, char *err)
{
  struct mx_buf b = MX_BUF_INIT(8192);
  mx_err rc = mx_buf_addf(&b, fmt, detail);
  if (!rc)
    rc = finish(t, mx_buf_cstr(&b), 1);
  mx_buf_release(&b);
  if (rc)
    return mx_fail(rc, err, "out of memory");
  mx_fail(code, err, "%s", t->out->markdown);
  return code;
}

static mx_err tools_list(const struct turn *t, struct mx_buf *out)
{
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < t->nspecs; i++)
    rc = mx_buf_addf(out, "- %s: %s\n", t->specs[i].name, t->specs[i].description ? t->specs[i].description : "");
  if (!rc && !t->nspecs)
    rc = mx_buf_adds(out, "(no tools)\n");
  return rc;
}

static mx_err build_system(struct turn *t, char *err)
{
  struct mx_buf tools = MX_BUF_INIT(MX_BUF_MAX_SMALL * 4);
  char now[40];
  time_t s = (time_t)(mx_now_ms() / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(now, sizeof(now), "%Y-%m-%d %H:%M UTC", &tm);
  mx_err rc = tools_list(t, &tools);
  if (rc) {
    mx_buf_release(&tools);
    return mx_fail(rc, err, "tool list too large");
  }
  const struct llm_turn_req *q = t->req;
  struct llm_prompt_vars v = {q->device, q->backend, q->os, mx_buf_cstr(&tools), q->policy, now};
  mx_buf_init(&t->system, MX_BUF_MAX_SMALL * 8);
  if (q->prompt_file)
    rc = llm_prompt_load(NULL, q->prompt_file, &v, &t->system, err);
  else
    rc = llm_prompt_load(t->a->cfg->agent.prompts_dir, t->a->cfg->agent.prompt_file, &v, &t->system, err);
  mx_buf_release(&tools);
  return rc;
}

static mx_err load_tools(struct turn *t)
{
  if (t->req->tools && t->req->tools->specs)
    t->nspecs = t->req->tools->specs(t->req->tools->ctx, &t->specs);
  if (!t->nspecs)
    return MX_OK;
  t->names = calloc(t->nspecs, sizeof(*t->names));
  if (!t->names)
    return MX_ERR_NOMEM;
  for (size_t i = 0; i < t->nspecs; i++)
    t->names[i] = t->specs[i].name;
  return MX_OK;
}

/* The model sent arguments that are not a JSON object. The first time it is
 * told exactly what was wrong (as the calls' results); the second time the
 * turn ends cleanly. */
static mx_err bad_args_round(struct turn *t, const struct llm_reply *r, int *stop, char *err)
{
  const char *first = NULL;
  for (size_t i = 0; i < r->ncalls && !first; i++)
    first = r->call_errors[i];
  if (t->told_bad_args) {
    *stop = 1;
    return fail_turn(t, MX_ERR_INVALID,
                     "The model sent invalid tool arguments again, so I stopped. Last problem: %s", first, err);
  }
  t->told_bad_args = 1;
  mx_err rc = MX_OK;
  for (size_t i = 0; !rc && i < r->ncalls; i++) {
    const char *why = r->call_errors[i];
    struct mx_buf b = MX_BUF_INIT(4096);
    rc = why ? mx_buf_addf(&b, "error: %s. Not run. Send the call again with arguments that are one JSON object "
                              "matching the tool's schema.", why)
             : mx_buf_adds(&b, "error: not run, because another call in the same reply had invalid arguments. "
                               "Send it again.");
    if (!rc)
      rc = llm_conv_add_tool(&t->conv, r->calls[i].id, r->calls[i].name, mx_buf_cstr(&b), 1);
    mx_buf_release(&b);
  }
  return rc ? mx_fail(rc, err, "out of memory") : MX_OK;
}

/* Runs the reply's calls and appends their results; sets *stop when stuck. */
static mx_err tool_round(struct turn *t, const struct llm_reply *r, int *stop, char *err)
{
  struct mx_buf p = MX_BUF_INIT(2048);
  if (llm_progress_text(r->calls, r->ncalls, &p) == MX_OK)
    progress(t, mx_buf_cstr(&p));
  mx_buf_release(&p);
  struct llm_tool_result *res = calloc(r->ncalls, sizeof(*res));
  if (!res)
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  mx_err rc = llm_run_calls(t->req->tools, r->calls, r->ncalls, t->a->cfg->agent.parallel_tools, res, err);
  const char *stuck_on = NULL;
  for (size_t i = 0; !rc && i < r->ncalls; i++) {
    t->out->tool_calls++;
    char *cut = llm_truncate(res[i].text, t->a->cfg->agent.tool_result_max_chars);
    rc = cut ? llm_conv_add_tool(&t->conv, r->calls[i].id, r->calls[i].name, cut, res[i].is_error) : MX_ERR_NOMEM;
    int s = rc ? 0 : llm_stuck_push(&t->stuck, r->calls[i].name, r->calls[i].args_json, cut);
    if (s < 0)
      rc = MX_ERR_NOMEM;
    if (s > 0 && !stuck_on)
      stuck_on = r->calls[i].name;
    free(cut);
  }
  for (size_t i = 0; i < r->ncalls; i++)
    free(res[i].text);
  free(res);
  if (rc == MX_ERR_NOMEM)
    return mx_fail(rc, err, "out of memory");
  if (rc)
    return rc; /* err already says why */
  if (stuck_on) {
    *stop = 1;
    return fail_turn(t, MX_ERR_CONFLICT,
                     "I stopped because the model kept repeating the same tool calls (%s) with the same results "
                     "without making progress. Try rephrasing the request.",
                     stuck_on, err);
  }
  return MX_OK;
}

static mx_err final_answer(struct turn *t, struct llm_reply *r)
{
  const char *txt = r->text && r->text[0] ? r->text : "(the model returned an empty answer)";
  mx_err rc = llm_conv_add_assistant(&t->conv, txt, NULL, 0);
  if (rc || r->stop != LLM_STOP_TRUNCATED)
    return rc ? rc : finish(t, txt, 0);
  /* Say so when the answer was cut at the output limit. */
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  rc = mx_buf_addf(&b, "%s\n\n_(the answer was cut at the model's output limit)_", txt);
  if (!rc)
    rc = finish(t, mx_buf_cstr(&b), 0);
  mx_buf_release(&b);
  return rc;
}

static int cancelled(const struct turn *t)
{
  return t->req->cancelled && t->req->cancelled(t->req->cancel_ctx);
}

static mx_err stopped(struct turn *t, int *stop, char *err)
{
  *stop = 1;
  return fail_turn(t, MX_ERR_CANCELLED, "Stopped%s: this turn ends here, nothing more will run.", " by !stop", err);
}

/* One model call and what follows from it. *stop ends the loop. */
static mx_err round_once(struct turn *t, int *stop, char *err)
{
  struct llm_chat_req cr = {mx_buf_cstr(&t->system), &t->conv, t->specs, t->nspecs};
  struct llm_call_ctx cx = {t->db, t->req->device, t->req->operator_id, t->deadline};
  struct llm_reply r;
  char rerr[MX_ERRBUF_LEN];
  llm_history_trim(&t->conv, t->a->cfg->agent.history_max_tokens, &t->keep_from);
  t->out->rounds++;
  mx_err rc = llm_router_chat(t->a->router, &cx, &cr, &r, t->out->provider, rerr);
  if (rc) {
    *stop = 1;
    return fail_turn(t, rc, "I could not get an answer from the language model: %s", rerr, err);
  }
  if (!r.ncalls)
    llm_extract_text_calls(&r, t->names, t->nspecs);
  if (!r.ncalls) {
    *stop = 1;
    rc = final_answer(t, &r);
    llm_reply_free(&r);
    return rc ? mx_fail(rc, err, "out of memory") : MX_OK;
  }
  if (t->tool_rounds >= t->a->cfg->agent.max_tool_iterations) {
    char n[16];
    snprintf(n, sizeof(n), "%d", t->tool_rounds);
    llm_reply_free(&r);
    *stop = 1;
    return fail_turn(t, MX_ERR_CONFLICT,
                     "I stopped after %s rounds of tool calls without reaching a final answer. Ask a narrower "
                     "question or continue with a follow-up.",
                     n, err);
  }
  if (cancelled(t)) { /* the model asked for tools after the operator said stop */
    llm_reply_free(&r);
    return stopped(t, stop, err);
  }
  t->tool_rounds++;
  rc = llm_conv_add_assistant(&t->conv, r.text, r.calls, r.ncalls);
  if (rc)
    rc = mx_fail(rc, err, "out of memory");
  else if (r.call_errors)
    rc = bad_args_round(t, &r, stop, err);
  else
    rc = tool_round(t, &r, stop, err);
  llm_reply_free(&r);
  return rc;
}

static mx_err run_loop(struct turn *t, char *err)
{
  const struct llm_agent_cfg *ac = &t->a->cfg->agent;
  /* Each round either ends the turn or counts one tool round, and
   * round_once stops at max_tool_iterations: at most max+1 model calls. */
  for (;;) {
    if (mx_mono_ms() >= t->deadline) {
      char lim[32];
      snprintf(lim, sizeof(lim), "%lld", (long long)(ac->turn_timeout_ms / 1000));
      return fail_turn(t, MX_ERR_TIMEOUT, "I stopped because this request took longer than its %s s limit.", lim,
                       err);
    }
    int stop = 0;
    if (cancelled(t))
      return stopped(t, &stop, err);
    mx_err rc = round_once(t, &stop, err);
    if (rc || stop)
      return rc;
  }
}

static mx_err turn_setup(struct turn *t, char *err)
{
  const struct llm_turn_req *q = t->req;
  mx_err rc = llm_db_open(t->a->db_path, &t->db, err);
  if (!rc)
    rc = llm_history_load(t->db, q->device, q->room_id, q->thread_id ? q->thread_id : "", &t->conv, err);
  if (rc)
    return rc;
  t->keep_from = t->conv.n;
  if (llm_conv_add_user(&t->conv, q->text) || load_tools(t))
    return mx_fail(MX_ERR_NOMEM, err, "out of memory");
  return build_system(t, err);
}

mx_err llm_agent_turn(struct llm_agent *a, const struct llm_turn_req *req, const struct llm_sink *sink,
                      struct llm_turn_result *out, char *err)
{
  struct turn t;
  memset(&t, 0, sizeof(t));
  memset(out, 0, sizeof(*out));
  t.a = a;
  t.req = req;
  t.sink = sink;
  t.out = out;
  t.deadline = mx_mono_ms() + a->cfg->agent.turn_timeout_ms;
  llm_conv_init(&t.conv);
  llm_stuck_init(&t.stuck);
  mx_buf_init(&t.system, 16);
  if (!req->device || !req->text || !req->room_id)
    return mx_fail(MX_ERR_INVALID, err, "llm turn: device, room id and text are required");
  mx_err rc = turn_setup(&t, err);
  if (!rc)
    rc = run_loop(&t, err);
  /* Keep what happened, also after a failure: the operator's message and
   * every call with its result stay together in the history. */
  if (t.db && t.keep_from < t.conv.n) {
    char herr[MX_ERRBUF_LEN];
    if (llm_history_append(t.db, req->device, req->room_id, req->thread_id ? req->thread_id : "", &t.conv,
                           t.keep_from, herr))
      mx_warn(req->device, "llm history not saved: %s", herr);
  }
  mx_info(req->device, "llm turn done rc=%d rounds=%d tools=%d provider=%s", (int)rc, out->rounds, out->tool_calls,
          out->provider[0] ? out->provider : "-");
  llm_stuck_free(&t.stuck);
  free(t.names);
  mx_buf_release(&t.system);
  llm_conv_free(&t.conv);
  mx_db_close(t.db);
  return rc;
}
