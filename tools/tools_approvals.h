/*
 * tools/tools_approvals.h - the approval store: one row per action waiting
 * for an operator (action id, device, exact tool + canonical args, risk,
 * short args hash, requester, created/expiry). Decisions are single-use and
 * bound to the args hash; expiry means deny. Rows live in SQLite (module
 * "tools_approvals"), so pending actions survive a restart.
 * Layer: tools/; common/ only; knows nothing of Matrix (the bot turns
 * replies and reactions into tools_approvals_decide calls).
 * Thread-safety: one store per process, shared by threads (internal mutex;
 * waiters sleep on a condition variable). Returned cJSON is owned.
 */
#ifndef TOOLS_APPROVALS_H
#define TOOLS_APPROVALS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_err.h"
#include "tools_redact.h"

#define TOOLS_APPROVAL_TTL_MS (5 * 60 * 1000)
#define TOOLS_ACTION_ID_LEN 8   /* e.g. "k3f9q2xa" */
#define TOOLS_ARGS_HASH_LEN 12  /* hex chars shown in the notice */

struct tools_approvals;

enum tools_approval_state {
  TOOLS_APPROVAL_PENDING = 0,
  TOOLS_APPROVAL_APPROVED = 1, /* decided, not yet run */
  TOOLS_APPROVAL_DENIED = 2,
  TOOLS_APPROVAL_EXPIRED = 3,
  TOOLS_APPROVAL_CANCELLED = 4,
  TOOLS_APPROVAL_USED = 5      /* approved and consumed by a run */
};

/* A stored action; strings are owned by the struct (tools_pending_release). */
struct tools_pending {
  char id[TOOLS_ACTION_ID_LEN + 1];
  char args_hash[TOOLS_ARGS_HASH_LEN + 1];
  char *device;
  char *tool;
  char *args_json;        /* canonical */
  char *risk;             /* "write", "destructive", "interpreter", ... */
  char *reason;           /* why approval is needed */
  char *requester;        /* operator MXID whose message caused the call */
  char *origin_json;      /* room, event, operator device ... (engine use) */
  char *call_id;
  char *notice_event_id;  /* set by the bot after posting; may be NULL */
  char *decided_by;
  int64_t created_ms;
  int64_t expires_ms;
  enum tools_approval_state state;
};

enum tools_verdict { TOOLS_VERDICT_APPROVE = 0, TOOLS_VERDICT_DENY = 1 };

mx_err tools_approvals_open(const char *db_path, struct tools_approvals **out, char *err);
void tools_approvals_close(struct tools_approvals *ap);
void tools_pending_release(struct tools_pending *p);
const char *tools_approval_state_str(enum tools_approval_state s);

/* Stores a new pending action. p->device, tool, args_json (canonical), risk,
 * requester must be set; id, args_hash, created/expires are filled here
 * (ttl_ms <= 0: TOOLS_APPROVAL_TTL_MS). */
mx_err tools_approvals_create(struct tools_approvals *ap, struct tools_pending *p, int64_t ttl_ms, char *err);
mx_err tools_approvals_set_notice(struct tools_approvals *ap, const char *id, const char *notice_event_id,
                                  char *err);
/* Loads one action (expiring it first when its time has passed). */
mx_err tools_approvals_get(struct tools_approvals *ap, const char *id, struct tools_pending *out, char *err);
/* Action id for a notice event (reactions); MX_ERR_NOT_FOUND otherwise. */
mx_err tools_approvals_find_by_notice(struct tools_approvals *ap, const char *notice_event_id,
                                      char id[TOOLS_ACTION_ID_LEN + 1], char *err);

/*
 * An operator's decision. MX_ERR_DENIED when is_operator is 0 (nothing
 * changes); MX_ERR_EXPIRED when too late (the row becomes expired);
 * MX_ERR_CONFLICT when already decided, used or cancelled (a replayed
 * approve); MX_ERR_NOT_FOUND for an unknown id. via: "reply", "reaction".
 */
mx_err tools_approvals_decide(struct tools_approvals *ap, const char *id, const char *approver_mxid,
                              int is_operator, enum tools_verdict v, const char *via, char *err);

/* Blocks until the action leaves PENDING, its expiry passes (then it is
 * marked expired) or *cancel becomes non-zero; *state gets the result. */
mx_err tools_approvals_wait(struct tools_approvals *ap, const char *id, const volatile int *cancel,
                            enum tools_approval_state *state, char *err);
/* Single use: APPROVED -> USED only when tool and args hash match the
 * stored ones; otherwise MX_ERR_DENIED / MX_ERR_CONFLICT / MX_ERR_EXPIRED. */
mx_err tools_approvals_consume(struct tools_approvals *ap, const char *id, const char *tool,
                               const char *args_hash, char *err);

mx_err tools_approvals_cancel(struct tools_approvals *ap, const char *id, const char *by, char *err);
/* Cancels every pending or approved-not-run action of a device; *n = count. */
mx_err tools_approvals_cancel_device(struct tools_approvals *ap, const char *device, int *n, char *err);
/* Pending actions (device NULL = all), oldest first: owned array of
 * {id, device, tool, args, risk, args_hash, requester, created_ms, expires_ms}.
 * args are redacted with r (tools_redact_json): this list goes to chat.
 * r may be NULL only in tests. */
mx_err tools_approvals_list_pending(struct tools_approvals *ap, const struct tools_redactor *r, const char *device,
                                    cJSON **out, char *err);

/* The short hash bound into an approval: first 12 hex chars of SHA-256 over
 * "tool\0canonical_args". */
void tools_args_hash(const char *tool, const char *canonical_args, char out[TOOLS_ARGS_HASH_LEN + 1]);

#endif
