/*
 * bot/mx_ext.c - wiring of E2EE, the LLM agent and the tools engine into
 * the bot core (see mx_ext.h). Until a module is configured for an
 * identity, its entry points answer with what is missing rather than
 * pretending: an encrypted room gets no plaintext, a request without an
 * LLM gets a notice saying so.
 */
#include "mx_ext.h"

#include <stdio.h>
#include <string.h>

#include "mx_log.h"
#include "mx_msg.h"

mx_err mx_ext_init(struct mx_bot *bot, char *err)
{
  (void)bot;
  (void)err;
  return MX_OK;
}

void mx_ext_free(struct mx_bot *bot)
{
  (void)bot;
}

mx_err mx_ext_ident_start(struct mx_ident *id, sqlite3 *db, char *err)
{
  (void)id;
  (void)db;
  (void)err;
  return MX_OK;
}

void mx_ext_ident_free(struct mx_ident *id)
{
  (void)id;
}

mx_err mx_ext_process_sync(struct mx_ident *id, sqlite3 *db, const cJSON *sync, char *err)
{
  (void)id;
  (void)db;
  (void)sync;
  (void)err;
  return MX_OK;
}

mx_err mx_ext_decrypt(struct mx_ident *id, sqlite3 *db, const char *room_id, const cJSON *event, cJSON **plain,
                      struct mx_sender_info *sender, char *err)
{
  (void)id;
  (void)db;
  (void)room_id;
  (void)event;
  (void)plain;
  (void)sender;
  return mx_fail(MX_ERR_UNSUPPORTED, err, "end-to-end encryption is not enabled in this build");
}

mx_err mx_ext_take_ready(struct mx_ident *id, sqlite3 *db, cJSON **events, char *err)
{
  (void)id;
  (void)db;
  (void)err;
  *events = NULL;
  return MX_OK;
}

mx_err mx_ext_encrypt(struct mx_ident *id, const char *room_id, const char *type, const cJSON *content,
                      cJSON **out, char *err)
{
  (void)id;
  (void)type;
  (void)content;
  (void)out;
  return mx_fail(MX_ERR_UNSUPPORTED, err, "room %s is encrypted and encryption is not enabled in this build",
                 room_id);
}

int mx_ext_sender_trusted(struct mx_ident *id, const char *user_id, const char *device_id, int verified,
                          char *reason, size_t reason_len)
{
  (void)device_id;
  if (!mx_bot_is_operator(id->bot, user_id)) {
    snprintf(reason, reason_len, "%s is not an operator of this bot", user_id);
    return 0;
  }
  if (id->bot->cfg->require_verified_sender && !verified) {
    snprintf(reason, reason_len,
             "Refused: commands are accepted only from an encrypted room and a device you have verified "
             "(cross-signed). Verify this session in Element (Settings > Sessions), then send the command again.");
    return 0;
  }
  return 1;
}

void mx_ext_handle_text(struct mx_msg *m)
{
  mx_msg_reply(m, "No LLM is configured for this device, so I can only run built-in commands. Send !help.",
               NULL, NULL);
}

int mx_ext_handle_command(struct mx_msg *m, const char *cmd, const char *args)
{
  (void)m;
  (void)cmd;
  (void)args;
  return 0;
}

int mx_ext_handle_reaction(struct mx_msg *m, const char *target_event_id, const char *key)
{
  (void)m;
  (void)target_event_id;
  (void)key;
  return 0;
}

void mx_ext_status(struct mx_ident *id, struct mx_buf *out)
{
  (void)id;
  (void)out;
}
