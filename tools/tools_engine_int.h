/*
 * tools/tools_engine_int.h - the engine struct and the steps shared by
 * tools_engine.c (life cycle, specs, kill switch), tools_engine_call.c
 * (validate, policy, approval) and tools_engine_run.c (audit, run, redact).
 * Not for other modules. Layer: tools/ -> devices/.
 */
#ifndef TOOLS_ENGINE_INT_H
#define TOOLS_ENGINE_INT_H

#include <pthread.h>

#include "tools_catalog.h"
#include "tools_engine.h"

/* One call in flight (lives on the calling thread's stack). */
struct inflight {
  volatile int cancel;
  char action_id[TOOLS_ACTION_ID_LEN + 1]; /* "" unless waiting on / running an approval */
  struct inflight *next;
};

struct tools_engine {
  struct tools_engine_opts o;
  char *device;
  pthread_mutex_t mu;      /* guards the in-flight list */
  struct inflight *active;
};

/* What run_checked needs; strings borrowed. */
struct call_ctx {
  const struct tools_spec *spec;
  const struct tools_origin *origin;
  const char *call_id;
  const cJSON *args;
  const char *decision;     /* "allow" or "ask" */
  const char *approval_ref; /* action id or NULL */
  struct tools_limits limits;
  struct inflight *fl;
  cJSON *audit_args;        /* owned: args with secrets redacted, for the audit */
};

void engine_track(struct tools_engine *e, struct inflight *fl);
void engine_untrack(struct tools_engine *e, struct inflight *fl);
/* 1 when a live call in this process is waiting on / running action_id. */
int engine_has_action(struct tools_engine *e, const char *action_id);

/* args with every string value redacted (owned; a copy when no redactor). */
cJSON *engine_redacted_args(const struct tools_engine *e, const cJSON *args);
/* Redacted copy of text (malloc'd), or a plain copy without a redactor. */
char *engine_redact(const struct tools_engine *e, const char *text);

/* Sets out->status and a formatted, redacted text. */
void engine_outcome(struct tools_engine *e, struct tools_outcome *out, enum tools_outcome_status s, const char *fmt,
                    ...) MX_PRINTF(4, 5);
/* Audits a call that did not run (denied, rejected, expired ...). */
void engine_audit_only(struct tools_engine *e, const struct call_ctx *c, const char *status, int64_t *seq);
/* Audit intent (fail closed), backend run, audit result, redacted text. */
mx_err engine_run_checked(struct tools_engine *e, const struct call_ctx *c, struct tools_outcome *out, char *err);

#endif
