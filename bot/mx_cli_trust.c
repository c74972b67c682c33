/*
 * bot/mx_cli_trust.c - `mxfleet trust show|pin|repin OPERATOR`: the operator
 * master keys the bot trusts (bot/crypto/e2ee_trust.c). show compares the
 * pin with what the homeserver publishes now; pin and repin change it and
 * write the change to every device's audit chain. Run on the bot host: the
 * person with the config and data_dir is the one who may move the trust root.
 */
#include "mx_cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mx_api.h"
#include "mx_config.h"
#include "mx_db.h"
#include "mx_e2ee.h"
#include "mx_store.h"
#include "mx_util.h"
#include "tools_audit.h"

static const char trust_usage[] =
    "usage: mxfleet trust show OPERATOR [--config FILE]\n"
    "       mxfleet trust pin OPERATOR [--config FILE] [--key MASTER_KEY]\n"
    "       mxfleet trust repin OPERATOR [--config FILE] [--key MASTER_KEY]\n\n"
    "Commands are accepted only from sessions cross-signed under the operator's master key that the bot\n"
    "trusts: the one in operators[].master_key, else the key pinned on first use.\n"
    "show    prints the trusted key and the key the homeserver publishes now; exit 1 when they differ\n"
    "pin     pins a key for an operator who has none pinned yet\n"
    "repin   replaces the pin, e.g. after the operator reset their cross-signing identity; compare the\n"
    "        new key with the one the operator's own client shows first\n"
    "Without --key, pin and repin take the key the homeserver publishes now. Changes go to every device's\n"
    "audit chain. A key set in the config is changed by editing the config.\n"
    "FILE defaults to $MXFLEET_CONFIG, else " MXFLEET_DEFAULT_CONFIG ".\n";

struct trust_ctx {
  struct mx_config *cfg;
  sqlite3 *db;
  const char *op;
  int op_index;
};

/* The key the homeserver publishes now, asked with a stored identity token. */
static int published(struct trust_ctx *t, char *out, size_t n, char *err)
{
  for (size_t i = 0; t->db && i < t->cfg->n_devices; i++) {
    struct mx_store_ident si;
    memset(&si, 0, sizeof(si));
    if (mx_store_ident_load(t->db, t->cfg->devices[i].user_id, &si, NULL) || !si.access_token) {
      mx_store_ident_release(&si);
      continue;
    }
    struct mx_api *api = mx_api_new(t->cfg->homeserver, t->cfg->devices[i].user_id, si.access_token);
    mx_store_ident_release(&si);
    mx_err rc = api ? mx_e2ee_published_master(api, t->op, out, n, err) : MX_ERR_NOMEM;
    mx_api_free(api);
    return rc ? -1 : 0;
  }
  snprintf(err, MX_ERRBUF_LEN, "no device identity has logged in yet (start the bot once), or pass --key");
  return -1;
}

static void iso(int64_t ms, char *out, size_t n)
{
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int show(struct trust_ctx *t)
{
  struct mx_e2ee_pin pin = { 0 };
  char err[MX_ERRBUF_LEN] = "", pub[64] = "", when[32];
  if (t->db && mx_e2ee_pin_get(t->db, t->op, &pin, err)) {
    fprintf(stderr, "mxfleet trust: %s\n", err);
    return 2;
  }
  const char *configured = t->cfg->operator_master_keys[t->op_index];
  printf("operator:   %s\n", t->op);
  if (configured)
    printf("trusted:    %s (operators[%d].master_key in %s)\n", configured, t->op_index, t->cfg->path);
  if (pin.master_key[0]) {
    iso(pin.pinned_ms, when, sizeof(when));
    printf("%s %s (%s, %s)\n", configured ? "pinned:    " : "trusted:   ", pin.master_key,
           strcmp(pin.source, "tofu") == 0 ? "pinned on first use" : pin.source, when);
  } else if (!configured) {
    printf("trusted:    none yet (pinned at the operator's first contact)\n");
  }
  int got = published(t, pub, sizeof(pub), err) == 0;
  if (got)
    printf("published:  %s (the homeserver's answer now)\n", pub);
  else
    printf("published:  unknown: %s\n", err);
  if (pin.seen_master[0] && (!got || strcmp(pin.seen_master, pub) != 0))
    printf("last seen:  %s (by the running bot)\n", pin.seen_master);
  const char *trusted = configured ? configured : pin.master_key[0] ? pin.master_key : NULL;
  if (!trusted || !got)
    return 1;
  if (strcmp(trusted, pub) != 0) {
    printf("status:     MISMATCH: commands from %s are refused. If they reset their identity and their client "
           "shows %s, run: mxfleet trust repin %s --config %s\n", t->op, pub, t->op, t->cfg->path);
    return 1;
  }
  printf("status:     ok\n");
  return 0;
}

/* The change is recorded in every device's chain: whoever reads a device's
 * audit sees under which operator identity later calls ran. */
static int audit_change(struct trust_ctx *t, const char *verb, const char *old_key, const char *new_key)
{
  int bad = 0;
  char tool[32];
  snprintf(tool, sizeof(tool), "trust.%s", verb);
  for (size_t i = 0; i < t->cfg->n_devices; i++) {
    struct tools_audit_opts ao = { t->cfg->data_dir, t->cfg->devices[i].name, NULL };
    struct tools_audit *a = NULL;
    char err[MX_ERRBUF_LEN] = "";
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "operator", t->op);
    if (old_key)
      cJSON_AddStringToObject(args, "old_master_key", old_key);
    else
      cJSON_AddNullToObject(args, "old_master_key");
    cJSON_AddStringToObject(args, "new_master_key", new_key);
    struct tools_audit_entry e = { 0 };
    e.kind = "trust";
    e.verification = "bot host CLI";
    e.tool = tool;
    e.args = args;
    e.decision = "allow";
    e.status = "done";
    e.exit_code = -1;
    e.operator_master_key = new_key;
    mx_err rc = tools_audit_open(&ao, &a, err);
    if (!rc)
      rc = tools_audit_append(a, &e, NULL, err);
    if (rc) {
      fprintf(stderr, "mxfleet trust: audit of device '%s': %s\n", t->cfg->devices[i].name, err);
      bad = 1;
    }
    tools_audit_close(a);
    cJSON_Delete(args);
  }
  return bad;
}

static int change(struct trust_ctx *t, const char *verb, const char *key)
{
  char err[MX_ERRBUF_LEN] = "", pub[64] = "";
  if (t->cfg->operator_master_keys[t->op_index]) {
    fprintf(stderr, "mxfleet trust: %s has operators[%d].master_key in %s; change the key there\n", t->op,
            t->op_index, t->cfg->path);
    return 2;
  }
  struct mx_e2ee_pin pin;
  if (mx_e2ee_pin_get(t->db, t->op, &pin, err)) {
    fprintf(stderr, "mxfleet trust: %s\n", err);
    return 2;
  }
  if (strcmp(verb, "pin") == 0 && pin.master_key[0]) {
    fprintf(stderr, "mxfleet trust: %s is already pinned to %s; use 'mxfleet trust repin' to replace it\n", t->op,
            pin.master_key);
    return 1;
  }
  if (!key) {
    if (published(t, pub, sizeof(pub), err)) {
      fprintf(stderr, "mxfleet trust: cannot read the published master key of %s: %s\n", t->op, err);
      return 1;
    }
    key = pub;
  }
  if (strlen(key) != 43) {
    fprintf(stderr, "mxfleet trust: --key: expected 43 characters of unpadded base64, got '%s'\n", key);
    return 2;
  }
  if (pin.master_key[0] && strcmp(pin.master_key, key) == 0) {
    printf("%s is already pinned to %s; nothing changed\n", t->op, key);
    return 0;
  }
  if (mx_e2ee_pin_set(t->db, t->op, key, verb, err)) {
    fprintf(stderr, "mxfleet trust: %s\n", err);
    return 1;
  }
  int bad = audit_change(t, verb, pin.master_key[0] ? pin.master_key : NULL, key);
  if (pin.master_key[0])
    printf("%s: trusted master key of %s is now %s (was %s)\n", verb, t->op, key, pin.master_key);
  else
    printf("%s: trusted master key of %s is now %s\n", verb, t->op, key);
  return bad;
}

int mx_cli_trust(int argc, char **argv)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "key", required_argument, NULL, 'k' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-') {
    int help = 0; /* `trust show --help` asks for help too, not a usage error */
    for (int i = 1; i < argc; i++)
      help |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    fputs(trust_usage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  const char *verb = argv[1], *config = NULL, *key = NULL;
  struct trust_ctx t = { NULL, NULL, argv[2], -1 };
  int c;
  optind = 3;
  while ((c = getopt_long(argc, argv, "c:k:h", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case 'k': key = optarg; break;
    case 'h': fputs(trust_usage, stdout); return 0;
    default: return 2;
    }
  }
  if (strcmp(verb, "show") != 0 && strcmp(verb, "pin") != 0 && strcmp(verb, "repin") != 0) {
    fprintf(stderr, "mxfleet trust: unknown action '%s' (expected show, pin or repin)\n", verb);
    return 2;
  }
  if (!(t.cfg = mx_cli_load_config(config)))
    return 2;
  for (size_t i = 0; i < t.cfg->n_operators; i++)
    if (strcmp(t.cfg->operators[i], t.op) == 0)
      t.op_index = (int)i;
  int rc = 2;
  char err[MX_ERRBUF_LEN] = "";
  char *db_path = mx_path_join(t.cfg->data_dir, "mxfleet.db");
  int is_show = strcmp(verb, "show") == 0;
  if (t.op_index < 0)
    fprintf(stderr, "mxfleet trust: '%s' is not among the operators in %s\n", t.op, t.cfg->path);
  else if (!db_path)
    fprintf(stderr, "mxfleet trust: out of memory\n");
  else if (is_show && access(db_path, F_OK) != 0)
    rc = show(&t); /* the bot never ran: nothing pinned, nobody logged in */
  else if ((!is_show && mx_mkdir_p(t.cfg->data_dir, 0700, err)) || mx_db_open(db_path, &t.db, err) ||
           mx_e2ee_migrate(t.db, err) || mx_store_migrate(t.db, err))
    fprintf(stderr, "mxfleet trust: %s\n", err[0] ? err : "out of memory");
  else
    rc = is_show ? show(&t) : change(&t, verb, key);
  mx_db_close(t.db);
  free(db_path);
  mx_config_free(t.cfg);
  return rc;
}
