/*
 * devices/dev.h - the one interface every device backend implements.
 *
 * A backend carries out one tool call on one device: "local" (in-process
 * executors, also what mxfleet-agent runs), "ssh" (libssh from the bot host)
 * and "wg" (signed HTTP to mxfleet-agent over WireGuard). Callers (tools/)
 * have already validated the arguments against the tool's schema and checked
 * the manifest; a backend may check again (the agent does) but never less.
 * Layer: lowest above common/; knows nothing of Matrix, LLMs or tools/.
 * Thread-safety: run() may be called from several threads at once; each
 * backend serialises what must be serialised (e.g. one SSH session).
 */
#ifndef DEV_H
#define DEV_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"

/* Who asked for a call, for the device's own audit (mxfleet-agent records
 * it); every field optional, strings borrowed. */
struct dev_caller {
  const char *mxid;          /* the operator's Matrix user ID */
  const char *device;        /* their Matrix device ID */
  const char *verification;  /* trust state of that device: "verified", "unverified" ... */
  const char *master_key;    /* the operator's cross-signing master key the trust decision used */
  const char *room_id;
  const char *event_id;      /* the message that led to the call */
};

struct dev_call {
  const char *request_id; /* unique per call; links backend logs to the audit */
  const char *tool;       /* catalog name: "fs.read", "shell.exec" ... (the same on every backend) */
  const cJSON *args;      /* borrowed; schema-validated */
  int timeout_ms;         /* whole call, from the manifest's per-tool limit */
  size_t max_output;      /* bytes of stdout+stderr kept; the rest is dropped */
  const volatile int *cancel; /* optional; non-zero asks the backend to stop the call (!stop) */
  int new_file_mode;      /* fs.write: permission bits of a file it creates; 0 means 0600 */
  const char *approval_ref;   /* optional; set by tools/ when an operator approved this exact call (the
                               * action id); the wg backend forwards it so the agent may run ASK tools */
  const struct dev_caller *caller; /* optional; the wg backend sends it, signed with the request */
};

enum dev_status {
  DEV_DONE = 0,    /* ran to completion; see exit_code / signal */
  DEV_TIMEOUT = 1, /* deadline hit: the process was signalled and reaped */
  DEV_REFUSED = 2, /* the device side refused it (its own manifest) */
  DEV_FAILED = 3   /* could not start (exec failed, file missing ...) */
};

struct dev_result {
  enum dev_status status;
  int exit_code;         /* -1 when not applicable */
  int signal;            /* terminating signal, 0 for none */
  int truncated;         /* output hit max_output */
  struct mx_buf out;     /* stdout, or the tool's result text (fs.read content, JSON listings) */
  struct mx_buf err;     /* stderr */
  char *detail;          /* owned; why it was refused or failed, NULL otherwise */
  int64_t duration_ms;
};

void dev_result_init(struct dev_result *r);
void dev_result_release(struct dev_result *r);
/* Sets status + detail (formatted); returns MX_OK for chaining in run(). */
mx_err dev_result_set(struct dev_result *r, enum dev_status status, const char *fmt, ...) MX_PRINTF(3, 4);
const char *dev_status_str(enum dev_status s);

/*
 * The tools a backend kind serves: one name per intent on every backend
 * ("fs.read" is SFTP on ssh, the agent on wg, in-process on local), so the
 * transport never shows in tool names, prompts or manifests. NULL-terminated
 * catalog names; NULL for an unknown kind. Each backend's run() refuses any
 * other tool, and tools/ offers a device exactly (its manifest ∩ this list).
 */
struct dev_backend;
const char *const *dev_served_tools(const char *backend_kind);
/* The backend kinds, NULL-terminated, in the order docs list them. */
extern const char *const dev_backend_kinds[];
/* 1 when the backend b serves tool (b->tools lists it). */
int dev_backend_serves(const struct dev_backend *b, const char *tool);

struct dev_backend {
  const char *name;         /* "local", "ssh", "wg" */
  const char *const *tools; /* dev_served_tools(name): what run() carries out */
  /* MX_OK: the call was carried out or refused by the device and *out says
   * how. An error code: it could not be attempted (transport down, host key
   * changed, auth failed); err says why. */
  mx_err (*run)(struct dev_backend *b, const struct dev_call *call, struct dev_result *out, char *err);
  /* MX_OK when reachable and healthy; *info (owned, may be NULL) has details. */
  mx_err (*health)(struct dev_backend *b, cJSON **info, char *err);
  void (*destroy)(struct dev_backend *b);
};

#endif
