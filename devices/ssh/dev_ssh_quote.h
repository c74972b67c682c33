/*
 * dev_ssh_quote.h - turns an argv into the one command string SSH carries,
 * quoted for the remote login shell that will re-parse it.
 *
 * sshd hands the string to the user's login shell, so the quoting must be
 * that shell's: a POSIX word ('...' with ' as '\'') is not a word under fish
 * ('1\' escapes the closing quote) nor under cmd.exe (x&calc.exe& runs two
 * programs). Each declared shell gets its own rules; characters a shell
 * cannot carry safely inside quotes (cmd.exe: " % ! ^ and control
 * characters; PowerShell: " , the Unicode single-quote look-alikes and
 * control characters) are refused with a clear error, never mangled; POSIX
 * shells and fish carry every byte but NUL. An unknown shell runs nothing. The probe of each shell is a
 * harmless echo whose output differs between the families, so a login
 * shell that is not the declared one is caught before anything runs.
 * Layer: devices/ssh; calls only common/. cJSON arguments are borrowed.
 */
#ifndef DEV_SSH_QUOTE_H
#define DEV_SSH_QUOTE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"

enum dev_ssh_shell {
  DEV_SSH_SHELL_POSIX = 0,  /* sh, dash, bash, zsh, ksh: the default on linux and macos */
  DEV_SSH_SHELL_FISH,       /* fish as the login shell */
  DEV_SSH_SHELL_CMD,        /* cmd.exe: Windows OpenSSH's default */
  DEV_SSH_SHELL_POWERSHELL, /* powershell.exe / pwsh as OpenSSH's DefaultShell */
  DEV_SSH_SHELL_UNKNOWN     /* anything else: shell.exec is refused */
};

/* "posix", "fish", "cmd", "powershell"; anything else is DEV_SSH_SHELL_UNKNOWN
 * (NULL means posix, the default of a Unix host). */
enum dev_ssh_shell dev_ssh_shell_from_name(const char *name);
const char *dev_ssh_shell_name(enum dev_ssh_shell sh);

/* Appends one word for arg (n bytes), quoted for sh. Fails on NUL, invalid
 * UTF-8 or a character sh cannot carry, naming `where` in err. */
mx_err dev_ssh_quote_arg(enum dev_ssh_shell sh, const char *arg, size_t n, const char *where, struct mx_buf *out,
                         char *err);

/* Joins argv (a non-empty JSON array of strings) into out, space separated,
 * every element quoted for sh. `where` names the array in error messages. */
mx_err dev_ssh_join_argv(enum dev_ssh_shell sh, const cJSON *argv, const char *where, struct mx_buf *out, char *err);

/* The whole command line of shell.exec: change to cwd (may be NULL), then
 * run argv so its exit status is the command's (POSIX and fish replace the
 * shell with exec, so a KILL reaches the program). */
mx_err dev_ssh_command(enum dev_ssh_shell sh, const cJSON *argv, const char *cwd, struct mx_buf *out, char *err);

/* The probe of sh: *cmd to run, *expect its exact output (trailing CR/LF
 * ignored). NULL for DEV_SSH_SHELL_UNKNOWN. */
void dev_ssh_shell_probe(enum dev_ssh_shell sh, const char **cmd, const char **expect);

#endif
