/*
 * bot/mx_ext_react.c - when a ✅/❌ reaction may decide an approval.
 * A reaction's target (m.relates_to) travels in the clear even inside an
 * encrypted event, and Element Web/Desktop (matrix-js-sdk) send reactions
 * unencrypted, so the homeserver could move a reaction onto another notice
 * or make one up. The rule (docs/security.md, "Approvals by reaction"):
 *   - the target is a pending approval of this device asked from this room,
 *     and the only one pending there (there is nothing to move it to);
 *   - an encrypted reaction: its sender passes the usual trust rules;
 *   - an unencrypted one: its sender is an operator whose last message in
 *     this room came encrypted from a session the trust rules accepted.
 * Otherwise one line says why and gives the typed command, never silence.
 * With require_verified_sender off, any operator's reaction decides.
 */
#include "mx_ext_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mx_json.h"

/* The trust of each operator's last message per room, in memory: after a
 * restart an unencrypted reaction needs one encrypted message first. */
#define WRITERS 64
static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct writer {
  char key[600]; /* identity \n room \n sender */
  int64_t ts;    /* origin_server_ts of that message */
  int trusted;
} writers[WRITERS];

static void writer_key(const struct mx_msg *m, char *key, size_t n)
{
  snprintf(key, n, "%s\n%s\n%s", m->id->user_id, m->room_id, m->sender);
}

void mx_ext_note_writer(struct mx_msg *m, int trusted)
{
  char key[sizeof(writers[0].key)];
  writer_key(m, key, sizeof(key));
  pthread_mutex_lock(&writers_lock);
  struct writer *slot = &writers[0];
  for (int i = 0; i < WRITERS; i++) {
    if (strcmp(writers[i].key, key) == 0) {
      slot = &writers[i];
      break;
    }
    if (writers[i].ts < slot->ts)
      slot = &writers[i]; /* the oldest entry makes room */
  }
  if (strcmp(slot->key, key) != 0 || m->origin_ts >= slot->ts) { /* workers may finish out of order */
    snprintf(slot->key, sizeof(slot->key), "%s", key);
    slot->ts = m->origin_ts;
    slot->trusted = trusted;
  }
  pthread_mutex_unlock(&writers_lock);
}

static int last_write_trusted(const struct mx_msg *m)
{
  char key[sizeof(writers[0].key)];
  writer_key(m, key, sizeof(key));
  int trusted = 0;
  pthread_mutex_lock(&writers_lock);
  for (int i = 0; i < WRITERS; i++)
    if (strcmp(writers[i].key, key) == 0)
      trusted = writers[i].trusted;
  pthread_mutex_unlock(&writers_lock);
  return trusted;
}

/* The room a pending approval was asked from (its origin), else "";
 * returns 0 when the approval is no longer pending (or unknown). */
static int approval_room(struct tools_approvals *ap, const char *action, char *room, size_t n)
{
  struct tools_pending p;
  char err[MX_ERRBUF_LEN];
  room[0] = '\0';
  if (tools_approvals_get(ap, action, &p, err))
    return 0;
  int pending = p.state == TOOLS_APPROVAL_PENDING;
  cJSON *o = p.origin_json ? cJSON_Parse(p.origin_json) : NULL;
  const char *r = o ? mx_json_str(o, "room_id") : NULL;
  if (r && pending)
    snprintf(room, n, "%s", r);
  cJSON_Delete(o);
  tools_pending_release(&p);
  return pending;
}

static int pending_in_room(struct mx_msg *m)
{
  struct mx_ext *x = m->id->bot->ext;
  cJSON *list = NULL;
  char err[MX_ERRBUF_LEN], room[256];
  int n = 0;
  if (tools_approvals_list_pending(x->approvals, NULL, m->id->dev->name, &list, err))
    return -1;
  const cJSON *e;
  cJSON_ArrayForEach(e, list)
  {
    const char *id = mx_json_str(e, "id");
    approval_room(x->approvals, id ? id : "", room, sizeof(room));
    n += strcmp(room, m->room_id) == 0;
  }
  cJSON_Delete(list);
  return n;
}

int mx_ext_reaction_allowed(struct mx_msg *m, const char *action, int approve, char *why, size_t n)
{
  struct mx_ext *x = m->id->bot->ext;
  const char *verb = approve ? "approve" : "deny";
  if (!mx_bot_is_operator(m->id->bot, m->sender)) {
    snprintf(why, n, "%s is not an operator of this bot.", m->sender);
    return 0;
  }
  if (!m->id->bot->cfg->require_verified_sender)
    return 1;
  if (m->encrypted && !mx_ext_sender_trusted(m->id, m, why, n))
    return 0;
  char room[256];
  if (!approval_room(x->approvals, action, room, sizeof(room)))
    return 1; /* decided or expired already: deciding changes nothing and says which */
  if (strcmp(room, m->room_id) != 0) {
    snprintf(why, n, "That reaction is not on an approval waiting in this room; type `%s %s` to %s it.", verb,
             action, verb);
    return 0;
  }
  int waiting = pending_in_room(m);
  if (waiting != 1) {
    snprintf(why, n, "%d approvals wait here and a reaction's target is not encrypted, so it cannot say which "
             "one: type `%s %s`.", waiting, verb, action);
    return 0;
  }
  if (!m->encrypted && !last_write_trusted(m)) {
    snprintf(why, n, "Your client sent this reaction unencrypted and your last message here did not come from a "
             "verified session, so it cannot %s: type `%s %s`.", verb, verb, action);
    return 0;
  }
  return 1;
}
