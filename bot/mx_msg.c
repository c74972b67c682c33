/* bot/mx_msg.c - replies to the message being handled; see mx_msg.h. */
#include "mx_msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "mx_log.h"
#include "mx_send.h"

void mx_msg_free(struct mx_msg *m)
{
  if (!m)
    return;
  free(m->event_id);
  free(m->room_id);
  free(m->sender);
  free(m->sender_device);
  free(m->body);
  free(m->sender_key);
  free(m->sender_ed25519);
  cJSON_Delete(m->content);
  free(m);
}

mx_err mx_msg_reply(struct mx_msg *m, const char *text, const char *html, char *event_id_out)
{
  char key[400], err[MX_ERRBUF_LEN] = "";
  snprintf(key, sizeof(key), "reply:%s:%d", m->event_id, m->reply_seq++);
  /* m.in_reply_to: with several commands in flight (or a restart between
   * them) Element shows which one each answer is for. */
  mx_err rc = mx_send_notice(m->id, m->w->db, m->room_id, key, text, html, m->event_id, event_id_out, err);
  if (rc)
    mx_log(MX_LOG_ERROR, m->id->dev->name, "reply to %s failed: %s", m->event_id, err);
  return rc;
}

mx_err mx_msg_reply_final(struct mx_msg *m, const char *text, const char *html)
{
  char key[400], err[MX_ERRBUF_LEN] = "";
  snprintf(key, sizeof(key), MX_MSG_FINAL_KEY_FMT, m->event_id);
  mx_err rc = mx_send_notice(m->id, m->w->db, m->room_id, key, text, html, m->event_id, NULL, err);
  if (rc)
    mx_log(MX_LOG_ERROR, m->id->dev->name, "reply to %s failed: %s", m->event_id, err);
  return rc;
}

mx_err mx_msg_replyf(struct mx_msg *m, const char *fmt, ...)
{
  struct mx_buf b = MX_BUF_INIT(MX_BUF_MAX_HTTP);
  va_list ap;
  va_start(ap, fmt);
  mx_err rc = mx_buf_vaddf(&b, fmt, ap);
  va_end(ap);
  if (!rc)
    rc = mx_msg_reply(m, mx_buf_cstr(&b), NULL, NULL);
  mx_buf_release(&b);
  return rc;
}

mx_err mx_msg_edit(struct mx_msg *m, const char *orig_event_id, const char *text, const char *html)
{
  char key[400], err[MX_ERRBUF_LEN] = "";
  snprintf(key, sizeof(key), "reply:%s:%d", m->event_id, m->reply_seq++);
  mx_err rc = mx_send_edit(m->id, m->w->db, m->room_id, key, orig_event_id, text, html, err);
  if (rc)
    mx_log(MX_LOG_WARN, m->id->dev->name, "edit of %s failed: %s", orig_event_id, err);
  return rc;
}
