/*
 * tools/tools_engine.h - one engine per device: validates a tool call
 * against the catalog schema, checks the manifest, waits for an operator's
 * approval when needed, writes the audit intent (fail closed), runs the
 * call on the backend, writes the audit result and redacts the output.
 * Layer: tools/ -> devices/ (struct dev_backend); knows nothing of Matrix:
 * notices go out through the approver callbacks the bot provides.
 * Ownership: every pointer in tools_engine_opts is borrowed and must outlive
 * the engine; outcome strings are owned (tools_outcome_release); specs are
 * owned (cJSON_Delete). Thread-safety: tools_engine_call may run on several
 * worker threads at once; the audit handle is serialised internally.
 */
#ifndef TOOLS_ENGINE_H
#define TOOLS_ENGINE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "dev.h"
#include "mx_err.h"
#include "tools_approvals.h"
#include "tools_audit.h"
#include "tools_policy.h"
#include "tools_redact.h"

struct tools_engine;

/* Who asked, from where (copied into the audit and the approval). */
struct tools_origin {
  const char *operator_mxid;
  const char *operator_device; /* Matrix device id of the sender */
  const char *verification;    /* "verified", "unverified" ... */
  const char *room_id;
  const char *event_id;
  int via_voice;               /* 1: transcribed voice; above read risk always asks */
  const char *operator_master_key; /* the operator's cross-signing master key the trust
                                      decision used (unpadded base64), NULL when none */
  const char *transcript;      /* what was heard (voice), shown in the approval notice; may be NULL */
  /* Optional: called with 1 before the call waits for the operator's
   * approval and with 0 once the wait ended (any thread), so the caller can
   * let other work go ahead meanwhile. */
  void (*waiting)(void *ctx, int on);
  void *waiting_ctx;
};

/* Implemented by the bot; tools/ never talks to Matrix itself. */
struct tools_approver {
  void *ctx;
  /* Posts the notice for p (tools_render_notice; p->args_json is already
   * redacted, p->origin_json has room, event, transcript); *notice_event_id
   * gets a malloc'd event id (or NULL). An error refuses the call. */
  mx_err (*post_notice)(void *ctx, const struct tools_pending *p, char **notice_event_id, char *err);
  /* Optional: the action was decided/expired/cancelled (for a follow-up). */
  void (*closed)(void *ctx, const struct tools_pending *p);
};

struct tools_engine_opts {
  const char *device;
  const struct tools_manifest *manifest;
  struct dev_backend *backend;
  struct tools_audit *audit;
  struct tools_approvals *approvals;
  const struct tools_redactor *redactor; /* may be NULL (no redaction: tests only) */
  struct tools_approver approver;
  int64_t approval_ttl_ms;               /* <= 0: TOOLS_APPROVAL_TTL_MS */
};

enum tools_outcome_status {
  TOOLS_OUT_OK = 0,          /* ran; see exit_code */
  TOOLS_OUT_INVALID = 1,     /* arguments failed validation (text says why) */
  TOOLS_OUT_DENIED = 2,      /* manifest denied it */
  TOOLS_OUT_REJECTED = 3,    /* operator denied the approval */
  TOOLS_OUT_EXPIRED = 4,     /* approval expired */
  TOOLS_OUT_CANCELLED = 5,   /* !cancel / !stop */
  TOOLS_OUT_FAILED = 6,      /* backend could not run it or it failed to start */
  TOOLS_OUT_TIMEOUT = 7,     /* hit the per-tool deadline */
  TOOLS_OUT_AUDIT_FAILED = 8 /* the intent could not be recorded: refused */
};

struct tools_outcome {
  enum tools_outcome_status status;
  char *text;            /* owned, redacted: what the model (and chat) sees */
  int exit_code;         /* -1 when not applicable */
  int signal;
  int truncated;
  int64_t intent_seq;    /* audit seq of the intent, 0 when none */
  int64_t result_seq;
  char action_id[TOOLS_ACTION_ID_LEN + 1]; /* "" when no approval was needed */
};

mx_err tools_engine_new(const struct tools_engine_opts *o, struct tools_engine **out, char *err);
void tools_engine_free(struct tools_engine *e);
const char *tools_outcome_status_str(enum tools_outcome_status s);
void tools_outcome_release(struct tools_outcome *o);

/* The tools offered to the model: catalog entries the backend supports and
 * the manifest enables, as an owned array of {name, description, parameters}. */
cJSON *tools_engine_specs(struct tools_engine *e);

/*
 * Runs one call end to end and fills *out (always, when MX_OK is returned:
 * denials, invalid arguments and timeouts are outcomes, not errors). Blocks
 * the calling worker thread while an approval is pending. Returns an error
 * code only when no outcome could be produced.
 */
mx_err tools_engine_call(struct tools_engine *e, const struct tools_origin *origin, const char *call_id,
                         const char *tool, const char *args_json, struct tools_outcome *out, char *err);

/* Runs a stored action that was approved (e.g. after a restart, when the
 * waiting thread is gone): consumes the approval, audits, runs. */
mx_err tools_engine_run_approved(struct tools_engine *e, const char *action_id, struct tools_outcome *out,
                                 char *err);

/* Kill switch: cancels every pending approval and in-flight call of this
 * device; returns how many were stopped. */
int tools_engine_stop_all(struct tools_engine *e);

#endif
