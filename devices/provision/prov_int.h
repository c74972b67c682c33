/*
 * prov_int.h - inside devices/provision only: the run context shared by the
 * steps, the step table type, the homeserver admin client, the config-file
 * text editor and the journal. Layer: devices/provision.
 * cJSON ownership: prov_ctx.config is owned by the context (prov_ctx_free);
 * prov_http() hands *resp to the caller (free with cJSON_Delete).
 */
#ifndef DEV_PROV_INT_H
#define DEV_PROV_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"
#include "prov.h"

#define PROV_CONFIG_MAX ((size_t)4 * 1024 * 1024)
#define PROV_HTTP_TIMEOUT_MS 15000L

/* Loaded configuration plus the paths derived from it. */
struct prov_cfg {
  char *path;           /* config file as given */
  char *dir;            /* its directory: base of relative paths */
  struct mx_buf text;   /* the bytes as read */
  cJSON *root;          /* owned */
  char *homeserver;     /* without trailing / */
  char *data_dir;       /* as written in the file */
  char *data_fs;        /* resolved against dir */
  char *secret_file;    /* registration.shared_secret_file, resolved; may be NULL */
  char *token_file;     /* registration.admin_token_file, resolved; may be NULL */
  const cJSON *operators; /* borrowed from root */
};

/* One onboarding run. */
struct prov_ctx {
  struct prov_cfg cfg;
  const struct dev_prov_add_opts *o;
  const struct dev_prov_matrix_ops *ops;
  FILE *out;
  int give_away;        /* root run for a service user: hand data_dir files to it */
  uid_t svc_uid;
  gid_t svc_gid;
  char *user_id;        /* @agent-NAME:server */
  char *ssh_user, *ssh_host;
  int ssh_port;
  char *key_file;       /* absolute or as given */
  const char *os;
  /* Each path twice: as written in the config (relative to the config's
   * directory when data_dir is) and as opened (resolved). */
  char *pw_cfg, *pw_fs, *kh_cfg, *kh_fs, *man_cfg, *man_fs, *prompt_cfg, *prompt_fs;
  char *journal_fs;
  char *config_written; /* config bytes this run wrote; NULL if none */
  int files_created;    /* bit 0 manifest, bit 1 prompt, written by this run */
  int lock_fd;          /* data_dir/provision, flock'd for the run; -1 = none */
  int skipped;          /* set by a step that had nothing to do it (no callback) */
  /* --via wg */
  const char *wg_if, *remote_dir, *device_if;
  uint32_t mesh_net;    /* host order */
  int mesh_len;
  char address[16];     /* the device's mesh address once allocated */
  char pubkey[45];      /* its WireGuard public key once made */
  char *wgkey_cfg, *wgkey_fs, *wgaddr_fs, *wgconf_fs, *hmac_cfg, *hmac_fs, *bundle_fs;
  char deb_arch[32];    /* --agent-deb's Architecture; "" without a package */
  char deb_version[64]; /* and its Version */
  int bundle_sent;      /* this run uploaded a changed bundle: start installs it */
};

struct prov_step {
  const char *id;    /* journal key */
  const char *title; /* progress text */
  int is_check;      /* changes nothing: reports "ok", never "already done" */
  /* Does the step or finds it done; *created = 1 when it changed anything.
   * note receives a short result text ("pinned SHA256:..."). */
  mx_err (*run)(struct prov_ctx *c, int *created, struct mx_buf *note, char *err);
  /* Reverts what run created; NULL when nothing to undo. */
  mx_err (*undo)(struct prov_ctx *c, char *err);
};

/* prov_cfg.c */
mx_err prov_cfg_load(const char *path, struct prov_cfg *cfg, char *err);
void prov_cfg_free(struct prov_cfg *cfg);
/* Path as written in the config for a file under data_dir, and resolved. */
mx_err prov_cfg_data_path(const struct prov_cfg *cfg, const char *rel, char **as_cfg, char **as_fs);
char *prov_cfg_resolve(const struct prov_cfg *cfg, const char *p);
/* Borrowed device object named name, or NULL; *index gets its position. */
const cJSON *prov_cfg_device(const struct prov_cfg *cfg, const char *name, int *index);
/* Reads a secret file (first line, trimmed) into a malloc'd string. */
mx_err prov_read_secret(const char *path, const char *what, char **out, char *err);

/* prov_cfgedit.c: text edits of the config that keep every other byte. */
mx_err prov_cfgedit_add(const char *text, const cJSON *entry, char **out, char *err);
mx_err prov_cfgedit_remove(const char *text, const char *name, char **out, char *err);

/* prov_http.c: one JSON request; body may be NULL; *resp may be NULL on a
 * non-JSON reply. Transport errors are MX_ERR_HTTP; any status is returned. */
mx_err prov_http(const char *method, const char *url, const char *token, const cJSON *body, long *status,
                 cJSON **resp, char *err);
/* hs + path_fmt with arg URL-escaped into its one %s; arg NULL: path_fmt
 * is a literal path (no formatting). */
char *prov_url(const char *hs, const char *path_fmt, const char *arg);

/* prov_hs.c: homeserver accounts. admin is for tests (onboarding passes 0);
 * MX_ERR_CONFLICT when the localpart is taken. */
mx_err prov_hs_register(const char *hs, const char *secret, const char *localpart, const char *password, int admin,
                        char *err);
mx_err prov_hs_admin_get(const char *hs, const char *token, const char *user_id, int *exists, int *deactivated,
                         char *err);
mx_err prov_hs_admin_put(const char *hs, const char *token, const char *user_id, const char *password,
                         const char *display, char *err);
/* MX_ERR_AUTH on a wrong password, MX_ERR_DENIED on a deactivated user. */
mx_err prov_hs_login(const char *hs, const char *user_id, const char *password, char **token, char *err);
void prov_hs_logout(const char *hs, const char *token);
/* Admin token when given, else the user's own password (UIA). */
mx_err prov_hs_deactivate(const char *hs, const char *admin_token, const char *user_id, const char *password,
                          char *err);

/* prov_journal.c */
mx_err prov_journal_load(const char *path, cJSON **out, char *err);
mx_err prov_journal_mark(const char *path, cJSON *journal, const char *step_id, char *err);
int prov_journal_has(const cJSON *journal, const char *step_id);

/* prov_steps_*.c: the step tables. */
extern const struct prov_step prov_steps_ssh[];
extern const int prov_steps_ssh_n;
extern const struct prov_step prov_steps_wg[];
extern const int prov_steps_wg_n;

/* prov_wg.c: WireGuard keys (X25519 via libcrypto), mesh addresses, the
 * hub's wg, and ssh/scp to the device (OpenSSH client, pinned known_hosts). */
mx_err prov_wg_init(struct prov_ctx *c, char *err);
void prov_wg_free(struct prov_ctx *c);
mx_err prov_wg_genkey(const char *path, char pub[45], char *err);
mx_err prov_wg_pubkey(const char *path, char pub[45], char *err);
mx_err prov_wg_alloc(struct prov_ctx *c, char out[16], char *err);
/* Runs /usr/bin/wg with args; stdout into out (may be NULL). */
mx_err prov_wg_cmd(const char *const *args, struct mx_buf *out, char *err);
mx_err prov_ssh_cmd(struct prov_ctx *c, const char *remote_cmd, struct mx_buf *out, char *err);
mx_err prov_scp(struct prov_ctx *c, const char *const *files, int n, const char *remote_dir, char *err);
/* Probes the agent's /v1/health through the tunnel once. */
mx_err prov_agent_health(struct prov_ctx *c, char *err);

/* Reads Package, Version and Architecture of --agent-deb (dpkg-deb) and
 * refuses a file that is not the mxfleet-agent package. */
mx_err prov_wg_deb_check(struct prov_ctx *c, char *err);

/* prov_bundle.c: the agent bundle (local generated files + what is sent). */
mx_err prov_bundle_build(struct prov_ctx *c, char hash[65], int *created, char *err);
/* local[i] (malloc'd, caller frees) is sent as remote_dir/remote[i]; at
 * most PROV_BUNDLE_MAX files. */
#define PROV_BUNDLE_MAX 9
mx_err prov_bundle_files(struct prov_ctx *c, char *local[PROV_BUNDLE_MAX], const char *remote[PROV_BUNDLE_MAX],
                         int *n);
mx_err prov_bundle_remove_local(struct prov_ctx *c, char *err);

/* Shared steps: prov_step_ssh.c, prov_step_matrix.c, prov_step_files.c. */
mx_err prov_step_pin_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err);
mx_err prov_step_pin_undo(struct prov_ctx *c, char *err);
mx_err prov_step_check_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err);
mx_err prov_step_user_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err);
mx_err prov_step_user_undo(struct prov_ctx *c, char *err);
mx_err prov_step_identity_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err);
mx_err prov_step_identity_undo(struct prov_ctx *c, char *err);
mx_err prov_step_files_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err);
mx_err prov_step_files_undo(struct prov_ctx *c, char *err);
mx_err prov_step_config_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err);
mx_err prov_step_config_undo(struct prov_ctx *c, char *err);
mx_err prov_step_greet_run(struct prov_ctx *c, int *created, struct mx_buf *note, char *err);

/* prov_files.c: small file helpers. */
/* prov_owner.c: when running as root, the unprivileged service user that
 * must own what this run writes under data_dir (1 = found). */
int prov_owner_find(const struct prov_cfg *cfg, uid_t *uid, gid_t *gid);
/* Hands every root-owned entry under dir to uid:gid (never follows links). */
mx_err prov_owner_apply(const char *dir, uid_t uid, gid_t gid, char *err);
/* Rewrites the config file keeping its mode, owner and group. */
mx_err prov_config_write(const char *path, const char *text, char *err);
int prov_file_exists(const char *path);
mx_err prov_file_same(const char *path, const char *data, size_t n, int *same, char *err);
mx_err prov_remove(const char *path, char *err);

#endif
