/*
 * bot/mx_send.h - everything an identity sends into a room: notices with
 * HTML, edits (m.replace) for progress, typing, read receipts.
 *
 * Idempotent: each send has a caller-chosen key ("reply:<event>:<n>"); its
 * transaction ID is stored before the first attempt and reused on every
 * retry and after a restart, so the homeserver never shows it twice.
 * Encrypted rooms are encrypted through the E2EE extension; if that is not
 * possible nothing is sent in clear. Blocking; call from workers.
 */
#ifndef MX_SEND_H
#define MX_SEND_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "mx_bot.h"

#define MX_EVENT_ID_LEN 256

/* content is borrowed. event_id_out may be NULL. */
/* Sends what mx_send_event kept after a failure the homeserver may get
 * over (in order, under each one's first txn: the homeserver stores each
 * once); stops at the first that fails the same way again. Call after a
 * successful sync, on a worker. Returns how many may still be kept (0:
 * none until mx_send_event keeps another, which bumps id->held_gen). */
size_t mx_send_flush_held(struct mx_ident *id, sqlite3 *db);
mx_err mx_send_event(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *type,
                     const cJSON *content, const char *key, char *event_id_out, char *err);
/* An m.notice; html NULL = escaped text. reply_to may be NULL. */
mx_err mx_send_notice(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *key, const char *text,
                      const char *html, const char *reply_to, char *event_id_out, char *err);
/* An alert that must reach the operators' phones: m.text (default push
 * rules silence m.notice) mentioning each of mention[0..n) in m.mentions,
 * which the default .m.rule.is_user_mention turns into a notification. */
mx_err mx_send_alert(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *text, const char *html,
                     const char *const *mention, size_t n_mention, char *err);
/* Replaces the text of an earlier notice (progress updates). */
mx_err mx_send_edit(struct mx_ident *id, sqlite3 *db, const char *room_id, const char *key,
                    const char *orig_event_id, const char *text, const char *html, char *err);
void mx_send_typing(struct mx_ident *id, const char *room_id, int typing);
/* "typing" for as long as a turn lasts (turns outlive one 30 s typing
 * notice): renewed every MX_TYPING_RENEW_MS on a thread of its own until
 * mx_typing_stop, which clears it. NULL (no thread) still works: typing is
 * sent once. */
struct mx_typing;
struct mx_typing *mx_typing_start(struct mx_ident *id, const char *room_id);
void mx_typing_stop(struct mx_typing *t);
void mx_send_receipt(struct mx_ident *id, const char *room_id, const char *event_id);
/* Best effort: redacts one of our own events (a turn's progress notice once
 * the answer is out); logged when it fails. */
void mx_send_redact(struct mx_ident *id, const char *room_id, const char *event_id, const char *reason);
/* HTML-escapes text into out; newlines become <br>. */
mx_err mx_html_escape(const char *text, struct mx_buf *out);
/* text as an HTML code block (<pre><code>), escaped, newlines kept as is. */
mx_err mx_html_code_block(const char *text, struct mx_buf *out);

/* When the calling thread last handed a PUT /send to the HTTP client
 * (mx_mono_us; 0 never): where a reply goes "on the wire", for metrics. */
int64_t mx_send_last_put_us(void);

#endif
