/*
 * tools/tools_render_notice.h - the approval notice, readable on a phone:
 * one sentence saying what will happen ("Run `systemctl restart nginx` on
 * web-2?"), the exact text that runs (scripts, file contents) verbatim,
 * then details: what voice was heard, risk and reason, every other
 * argument, the args hash the approval binds to, a relative expiry and how
 * to answer. Nothing that runs is left out: only secret values are masked
 * (the engine passes redacted arguments), and text over the notice's size
 * is announced with its size and shown whole by `!pending ID`.
 * Layer: tools/; common/ only; plain text parts, the bot adds markup.
 */
#ifndef TOOLS_RENDER_NOTICE_H
#define TOOLS_RENDER_NOTICE_H

#include <stdint.h>

#include "mx_buf.h"
#include "mx_err.h"
#include "tools_approvals.h"

/* Bytes of the verbatim block a notice shows; the rest is announced. */
#define TOOLS_NOTICE_SHOWN_MAX 6000

/* The parts; the bot renders head (backticks mark one inline code span),
 * shown as a code block (empty when the head says it all), details as
 * lines. Owned buffers: tools_notice_release. */
struct tools_notice {
  struct mx_buf head;
  struct mx_buf shown;
  struct mx_buf details;
};

void tools_notice_init(struct tools_notice *n);
void tools_notice_release(struct tools_notice *n);

/* p->args_json holds the (redacted) canonical arguments; p->origin_json may
 * carry "transcript" (voice). now_ms gives the relative expiry. */
mx_err tools_render_notice(const struct tools_pending *p, int64_t now_ms, struct tools_notice *n);
/* The three parts as one plain text (the m.notice body). */
mx_err tools_notice_text(const struct tools_notice *n, struct mx_buf *out);
/* `!pending ID`: the head and every byte of what runs, nothing cut. */
mx_err tools_render_action_full(const struct tools_pending *p, int64_t now_ms, struct mx_buf *out);

#endif
