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
 * The operator's device ALICEPHONE is a second real account that shared a
 * Megolm session for !dm:example.org with the bot over Olm at start-up. Keys
 * are random per run, so a seed cannot carry valid ciphertext: a timeline
 * event whose content is {"fuzz_plaintext": {...}} is encrypted in that
 * session before processing, and mutations of the plaintext reach the code
 * behind a successful decryption.
 * Properties: the bot never queues a command from a non-operator or from
 * itself, and every queued command has an event ID, room, sender and body.
 */
#include "fuzz_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <olm/olm.h>
#include <olm/outbound_group_session.h>

#include "e2ee_int.h"
#include "mx_bot.h"
#include "mx_crypto.h"
#include "mx_db.h"
#include "mx_e2ee.h"
#include "mx_json.h"
#include "mx_ext_int.h"
#include "mx_log.h"
#include "mx_store.h"
#include "mx_sync.h"

#define BOT_USER "@agent-pc1:example.org"
#define OPERATOR "@alice:example.org"
#define ROOM "!dm:example.org"

static struct mx_e2ee *peer; /* the operator's device */
static OlmOutboundGroupSession *megolm;

static struct mx_ident *ident;
static sqlite3 *db;

/* The operator's device shares a fresh Megolm session with the bot: an
 * Olm pre-key message to a one-time key of the bot, processed and committed
 * like any sync. */
static void share_room_key(const char *dir, const char *db_path, struct mx_e2ee *bot)
{
  char err[MX_ERRBUF_LEN] = "", sid[128], key[512], otks_json[1024];
  struct mx_e2ee_opts po = {.db_path = db_path, .data_dir = dir, .user_id = OPERATOR, .device_id = "ALICEPHONE"};
  FUZZ_CHECK(mx_e2ee_open(&po, &peer, err) == MX_OK);
  uint8_t rnd[512];
  megolm = olm_outbound_group_session(malloc(olm_outbound_group_session_size()));
  size_t need = olm_init_outbound_group_session_random_length(megolm);
  FUZZ_CHECK(need <= sizeof(rnd) && mx_random_bytes(rnd, need) == MX_OK);
  FUZZ_CHECK(olm_init_outbound_group_session(megolm, rnd, need) != olm_error());
  size_t n = olm_outbound_group_session_id(megolm, (uint8_t *)sid, sizeof(sid) - 1);
  sid[n] = '\0';
  n = olm_outbound_group_session_key(megolm, (uint8_t *)key, sizeof(key) - 1);
  key[n] = '\0';
  cJSON *rk = cJSON_CreateObject();
  cJSON_AddStringToObject(rk, "algorithm", "m.megolm.v1.aes-sha2");
  cJSON_AddStringToObject(rk, "room_id", ROOM);
  cJSON_AddStringToObject(rk, "session_id", sid);
  cJSON_AddStringToObject(rk, "session_key", key);

  pthread_mutex_lock(&bot->lock);
  need = olm_account_generate_one_time_keys_random_length(bot->acct, 1);
  FUZZ_CHECK(need <= sizeof(rnd) && mx_random_bytes(rnd, need) == MX_OK);
  olm_account_generate_one_time_keys(bot->acct, 1, rnd, need);
  n = olm_account_one_time_keys(bot->acct, otks_json, sizeof(otks_json));
  pthread_mutex_unlock(&bot->lock);
  cJSON *otks = cJSON_ParseWithLength(otks_json, n);
  const cJSON *curve = mx_json_obj(otks, "curve25519");
  FUZZ_CHECK(curve && curve->child && cJSON_IsString(curve->child));

  struct e2ee_olm *o = NULL;
  cJSON *ct = NULL;
  pthread_mutex_lock(&peer->lock);
  FUZZ_CHECK(e2ee_olm_new_outbound(peer, mx_e2ee_curve25519(bot), curve->child->valuestring, &o, err) == MX_OK);
  FUZZ_CHECK(e2ee_olm_encrypt(peer, o, BOT_USER, mx_e2ee_ed25519(bot), "m.room_key", rk, &ct, err) == MX_OK);
  pthread_mutex_unlock(&peer->lock);
  cJSON *sync = cJSON_CreateObject(), *ev = cJSON_CreateObject();
  cJSON_AddStringToObject(ev, "type", "m.room.encrypted");
  cJSON_AddStringToObject(ev, "sender", OPERATOR);
  cJSON_AddItemToObject(ev, "content", ct);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(cJSON_AddObjectToObject(sync, "to_device"), "events"), ev);
  FUZZ_CHECK(mx_db_begin(db, err) == MX_OK);
  if (mx_e2ee_process_sync(bot, db, sync, err) != MX_OK) {
    fprintf(stderr, "fuzz_sync: room key: %s\n", err);
    abort();
  }
  FUZZ_CHECK(mx_db_commit(db, err) == MX_OK);
  cJSON_Delete(sync);
  cJSON_Delete(otks);
  cJSON_Delete(rk);
}

/* {"fuzz_plaintext": P} content becomes the Megolm encryption of P by the
 * operator's device (P printed as JSON, whatever it holds). */
static void encrypt_marked(cJSON *resp)
{
  cJSON *join = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "rooms"), "join"), *room;
  if (!cJSON_IsObject(join))
    return;
  cJSON_ArrayForEach(room, join) {
    cJSON *events = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(room, "timeline"), "events");
    cJSON *ev;
    if (!cJSON_IsArray(events))
      continue;
    cJSON_ArrayForEach(ev, events) {
      cJSON *content = cJSON_GetObjectItemCaseSensitive(ev, "content");
      cJSON *plain = cJSON_IsObject(content) ? cJSON_GetObjectItemCaseSensitive(content, "fuzz_plaintext") : NULL;
      char *txt = plain ? cJSON_PrintUnformatted(plain) : NULL;
      if (!txt)
        continue;
      size_t cap = olm_group_encrypt_message_length(megolm, strlen(txt)), n;
      char *out = malloc(cap + 1), sid[128];
      FUZZ_CHECK(out != NULL);
      n = olm_group_encrypt(megolm, (uint8_t *)txt, strlen(txt), (uint8_t *)out, cap);
      FUZZ_CHECK(n != olm_error());
      out[n] = '\0';
      size_t sn = olm_outbound_group_session_id(megolm, (uint8_t *)sid, sizeof(sid) - 1);
      sid[sn] = '\0';
      cJSON *c = cJSON_CreateObject();
      cJSON_AddStringToObject(c, "algorithm", "m.megolm.v1.aes-sha2");
      cJSON_AddStringToObject(c, "sender_key", mx_e2ee_curve25519(peer));
      cJSON_AddStringToObject(c, "device_id", "ALICEPHONE");
      cJSON_AddStringToObject(c, "session_id", sid);
      cJSON_AddStringToObject(c, "ciphertext", out);
      cJSON_ReplaceItemInObjectCaseSensitive(ev, "content", c);
      free(out);
      cJSON_free(txt);
    }
  }
}

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
  share_room_key(dir, db_path, ix.e2ee);
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
  if (cJSON_IsObject(resp))
    encrypt_marked(resp);
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
