/*
 * bot/mx_ext_int.h - state behind mx_ext.h, shared by mx_ext*.c only:
 * the bot-wide LLM agent, speech-to-text, approvals store, redactor and
 * health monitor, and per identity its E2EE state and its device's tools
 * engine (manifest, backend, audit). Created at start, freed at exit.
 */
#ifndef MX_EXT_INT_H
#define MX_EXT_INT_H

#include "llm_agent.h"
#include "llm_config.h"
#include "llm_stt.h"
#include "llm_tools.h"
#include "mx_bot.h"
#include "mx_e2ee.h"
#include "mx_ext.h"
#include "mx_msg.h"
#include "tools_engine.h"

struct dev_health;

struct mx_ident_ext {
  struct mx_e2ee *e2ee;              /* NULL until started */
  struct tools_manifest *manifest;   /* NULL: no tools for this device */
  struct dev_backend *backend;
  struct tools_audit *audit;
  struct tools_engine *engine;
  char manifest_note[200];           /* the manifest's path or "built-in ...", for !status */
  cJSON *specs;                      /* owned: tools offered to the model */
  struct llm_tool_spec *llm_specs;   /* views into specs */
  size_t n_specs;
  int interrupted_closed;            /* the start-up sweep of the chain ran */
  /* health, under mx_ext.health_round: the chain's files (tools_audit_stamp) */
  char audit_ok_stamp[TOOLS_AUDIT_STAMP_LEN]; /* when last verified good */
  char round_stamp[TOOLS_AUDIT_STAMP_LEN];    /* when the latest round's probe looked ("" none) */
  char ckpt_stamp[TOOLS_AUDIT_STAMP_LEN];     /* when last checked for a checkpoint */
};

struct mx_ext {
  struct llm_config *llm_cfg;        /* NULL: no LLM configured */
  struct llm_agent *agent;
  struct llm_stt_config stt;
  int has_stt;
  struct tools_approvals *approvals;
  struct tools_redactor *redactor;
  struct dev_health *health;
  long health_timer;
  pthread_mutex_t health_round; /* a round's probes and checkpoint looks (the stamps above) */
};

/* The worker currently running a job on this thread (for callbacks from
 * lower layers that must send: approval notices, progress edits). */
extern _Thread_local struct mx_worker *mx_ext_current_worker;

static inline struct mx_ident_ext *ident_ext(struct mx_ident *id)
{
  return id->ext;
}

/* mx_ext_secrets.c: the config's own secrets (password and key files,
 * API keys) as literal redactions; called before the log filter is set. */
mx_err mx_ext_secrets_add(struct mx_bot *bot, struct tools_redactor *r, char *err);

/* mx_ext_tools.c */
mx_err mx_ext_tools_init(struct mx_bot *bot, char *err);
mx_err mx_ext_tools_ident(struct mx_ident *id, char *err);
void mx_ext_tools_ident_free(struct mx_ident *id);
void mx_ext_tools_free(struct mx_bot *bot);
int mx_ext_tools_command(struct mx_msg *m, const char *cmd, const char *args);
int mx_ext_tools_reaction(struct mx_msg *m, const char *target, const char *key);
void mx_ext_tools_status(struct mx_ident *id, struct mx_buf *out);
/* The llm_tools table for one turn of m; free with mx_ext_tools_turn_free. */
/* on_wait(ctx, on) is told when a call of the turn starts/stops waiting for
 * an approval (see tools_origin.waiting). */
struct llm_tools *mx_ext_tools_for_turn(struct mx_msg *m, void (*on_wait)(void *ctx, int on), void *ctx);
void mx_ext_tools_turn_free(struct llm_tools *t);
const char *mx_ext_tools_policy_summary(struct mx_ident *id);

/* mx_ext_react.c: 1 when m (a ✅/❌ reaction on the notice of action) may
 * decide it; else 0 and why holds the one-line reply with the typed
 * command. */
int mx_ext_reaction_allowed(struct mx_msg *m, const char *action, int approve, char *why, size_t n);

/* mx_ext_health.c */
mx_err mx_ext_health_init(struct mx_bot *bot, char *err);
void mx_ext_health_start(struct mx_bot *bot);
void mx_ext_health_free(struct mx_bot *bot);
int mx_ext_health_command(struct mx_msg *m, const char *cmd);

#endif
