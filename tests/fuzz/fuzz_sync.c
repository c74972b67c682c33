/*
 * tests/fuzz/fuzz_sync.c - a /sync response body as a homeserver could send
 * it, through the bot's whole processing path without network
 * (bot/mx_sync.c mx_sync_process): E2EE to_device events (Olm), device list
 * changes, one-time key counts, invites, joined rooms' state and timelines
 * (plain and Megolm-encrypted events, decrypted or queued for their key)
 * into the inbox ledger, and operator commands into the batch.
 * One identity (@agent-pc1:example.org, operator @alice:example.org) with a
 * real Olm account and the bot's SQLite schema in a scratch directory; each
 * input runs in a transaction that is rolled back, as the daemon does when
 * processing fails, so inputs do not depend on each other.
 * Properties: the bot never queues a command from a non-operator or from
 * itself, and every queued command has an event ID, room, sender and body.
 */
#include "fuzz_util.h"

#include <fcntl.h>
#include <unistd.h>

#include "mx_bot.h"
#include "mx_db.h"
#include "mx_e2ee.h"
#include "mx_ext_int.h"
#include "mx_log.h"
#include "mx_store.h"
#include "mx_sync.h"

#define BOT_USER "@agent-pc1:example.org"
#define OPERATOR "@alice:example.org"

static struct mx_ident *ident;
static sqlite3 *db;

static void setup(void)
{
  static char *operators[] = {OPERATOR};
  static struct mx_config cfg;
  static struct mx_device_config dev;
  static struct mx_bot bot;
  static struct mx_ident id;
  static struct mx_ident_ext ix;
  static char db_path[600];
  char err[MX_ERRBUF_LEN];
  const char *dir = fuzz_scratch_dir();

  /* Warnings about undecryptable events are formatted but not shown. */
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  FUZZ_CHECK(devnull >= 0);
  mx_log_set_fd(devnull);
  snprintf(db_path, sizeof(db_path), "%s/mxfleet.db", dir);
  cfg.operators = operators;
  cfg.n_operators = 1;
  cfg.require_verified_sender = 1;
  dev.name = "pc1";
  dev.user_id = BOT_USER;
  bot.cfg = &cfg;
  bot.db_path = db_path;
  id.bot = &bot;
  id.dev = &dev;
  id.user_id = BOT_USER;
  id.device_id = "FUZZDEVICE";
  id.first_sync_done = 1;
  id.ext = &ix;
  pthread_mutex_init(&id.crypto_lock, NULL);
  pthread_mutex_init(&id.turn_lock, NULL);
  if (mx_db_open(db_path, &db, err) || mx_store_migrate(db, err)) {
    fprintf(stderr, "fuzz_sync: %s\n", err);
    abort();
  }
  const char *ops[] = {OPERATOR};
  struct mx_e2ee_opts o = {.db_path = db_path, .data_dir = dir, .user_id = BOT_USER, .device_id = "FUZZDEVICE",
                           .operators = ops, .n_operators = 1, .require_verified_sender = 1};
  if (mx_e2ee_open(&o, &ix.e2ee, err)) {
    fprintf(stderr, "fuzz_sync: %s\n", err);
    abort();
  }
  ident = &id;
}

static void check_batch(const struct mx_sync_batch *b)
{
  for (size_t i = 0; i < b->n; i++) {
    const struct mx_msg *m = b->msgs[i];
    FUZZ_CHECK(m->event_id && m->room_id && m->sender && m->body);
    FUZZ_CHECK(strcmp(m->sender, OPERATOR) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!ident)
    setup();
  cJSON *resp = cJSON_ParseWithLength((const char *)data, size);
  if (!resp)
    return 0;
  char err[MX_ERRBUF_LEN] = "";
  struct mx_sync_batch b = {NULL, 0, 0};
  struct mx_ident_ext *ix = ident->ext;
  pthread_mutex_lock(&ident->crypto_lock);
  FUZZ_CHECK(mx_db_begin(db, err) == MX_OK);
  if (mx_sync_process(ident, db, resp, NULL, &b, err) == MX_OK)
    check_batch(&b);
  else
    FUZZ_CHECK(err[0] != '\0');
  mx_db_rollback(db);
  mx_e2ee_sync_aborted(ix->e2ee);
  pthread_mutex_unlock(&ident->crypto_lock);
  mx_sync_batch_free(&b);
  cJSON_Delete(resp);
  return 0;
}
