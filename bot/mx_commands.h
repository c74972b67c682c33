/*
 * bot/mx_commands.h - handling one operator message: trust check, age
 * check (old commands are held for confirmation, never run blindly),
 * built-in commands from one table (which also feeds !help), and
 * everything else to the LLM agent through mx_ext.
 */
#ifndef MX_COMMANDS_H
#define MX_COMMANDS_H

#include "mx_msg.h"

/* Takes ownership of m and queues it on the worker pool. */
void mx_commands_dispatch(struct mx_msg *m);
/* Takes ownership of m and handles it now, on w (the caller's worker). */
void mx_commands_run(struct mx_msg *m, struct mx_worker *w);
/* The !help text (plain) into out. */
mx_err mx_commands_help(struct mx_buf *out, int alerts_room);

#endif
