/*
 * dev_ssh_quote.h - turns an argv into the one command string SSH carries.
 *
 * The remote login shell re-parses the string sshd receives, so each argument
 * is wrapped in single quotes with ' written as '\'' (BashFAQ/096); nothing
 * inside single quotes is special to a POSIX shell. NUL bytes and invalid
 * UTF-8 are refused rather than mangled. Layer: devices/ssh; calls only
 * common/. cJSON arguments are borrowed.
 */
#ifndef DEV_SSH_QUOTE_H
#define DEV_SSH_QUOTE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"

/* Appends one quoted word ('...') for arg (n bytes) to out. Fails on NUL or
 * invalid UTF-8, naming `where` in err. */
mx_err dev_ssh_quote_arg(const char *arg, size_t n, const char *where, struct mx_buf *out, char *err);

/* Joins argv (a non-empty JSON array of strings) into out, space separated,
 * every element quoted. `where` names the array in error messages. */
mx_err dev_ssh_join_argv(const cJSON *argv, const char *where, struct mx_buf *out, char *err);

#endif
