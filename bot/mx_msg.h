/*
 * bot/mx_msg.h - one message being handled: who sent it, where, and how to
 * reply. Replies get idempotent keys "reply:<event_id>:<n>", so re-running
 * a handler after a crash re-uses the same transaction IDs.
 * Owned by the job that handles it; freed with mx_msg_free.
 */
#ifndef MX_MSG_H
#define MX_MSG_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_bot.h"

struct mx_msg {
  struct mx_ident *id;
  struct mx_worker *w;       /* the worker running it (w->db) */
  char *event_id, *room_id, *sender, *sender_device, *body;
  cJSON *content;            /* owned; decrypted content for encrypted rooms */
  char *sender_key, *sender_ed25519; /* E2EE: keys of the session that carried it */
  int64_t origin_ts;
  int verified;              /* as decided by mx_ext_sender_trusted */
  char trusted_master[64];   /* operator master key that decision trusted, "" none */
  int encrypted;
  int via_voice;             /* body came from a transcribed voice message */
  int reply_seq;                   /* n of the next "reply:<event_id>:<n>" key */
  int64_t synced_us;         /* mx_mono_us when its /sync response arrived; 0 recovered */
};

void mx_msg_free(struct mx_msg *m);
/* Sends a notice in reply; html may be NULL. event_id_out may be NULL. */
mx_err mx_msg_reply(struct mx_msg *m, const char *text, const char *html, char *event_id_out);
/* The handler's last word on the message (an LLM turn's answer), under the
 * key "reply:<event_id>:final": a restart that finds the message still
 * running sends its "interrupted" notice under the same key, so the
 * operator gets exactly one of the two (see mx_sync_recover_inbox). */
mx_err mx_msg_reply_final(struct mx_msg *m, const char *text, const char *html);
#define MX_MSG_FINAL_KEY_FMT "reply:%s:final"
/* printf-style plain-text reply. */
mx_err mx_msg_replyf(struct mx_msg *m, const char *fmt, ...) MX_PRINTF(2, 3);
/* Edits an earlier reply of this message. */
mx_err mx_msg_edit(struct mx_msg *m, const char *orig_event_id, const char *text, const char *html);

#endif
