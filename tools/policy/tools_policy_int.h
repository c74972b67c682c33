/*
 * tools/policy/tools_policy_int.h - the manifest structure shared by the
 * files of tools/policy (parse, check, path opening). Not for other modules.
 * Layer: tools/; common/ only.
 */
#ifndef TOOLS_POLICY_INT_H
#define TOOLS_POLICY_INT_H

#include <pthread.h>

#include "tools_policy.h"

#define POLICY_MAX_COMPS 64

struct policy_root {
  char *path;              /* as written in the manifest */
  char **comps;            /* components, for comparison (never a string prefix) */
  int ncomps;
  int fd;                  /* O_PATH dirfd; -2 not opened yet, -1 unavailable here */
};

struct policy_rule {
  enum tools_decision kind; /* deny / ask / allow */
  char *where;              /* "commands.allow[2]" for reasons */
  char *argv0;              /* absolute, exact */
  char **pats;              /* one pattern per argument (policy_glob) */
  int npats;
  int any_args;             /* deny rules without "args": any arguments */
  char *rest;               /* pattern for further arguments; NULL = exact count */
};

struct policy_tool {
  char *name;
  int ask;                  /* 1: always ask before running */
  struct tools_limits limits;
};

struct tools_manifest {
  char *source;
  int windows;              /* platform "windows": drive-letter roots, '\\' separators */
  const char *shell;        /* "posix", "fish", "cmd" or "powershell" (static string) */
  struct policy_root *read;
  int nread;
  struct policy_root *write;
  int nwrite;
  struct policy_rule *rules; /* deny rules, then ask, then allow */
  int nrules;
  struct policy_tool *tools;
  int ntools;
  struct tools_limits defaults;
  pthread_mutex_t mu;       /* guards lazy opening of root dirfds */
};

enum policy_kind { PK_PATH_READ, PK_PATH_WRITE, PK_REPO, PK_COMMAND, PK_EVAL, PK_PLAIN };

struct policy_kind_entry {
  const char *tool;
  enum policy_kind kind;
  const char *arg;   /* the argument holding the path / argv */
  int default_ask;   /* approval when the manifest does not say */
};

/* The policy meaning of every tool name; NULL when unknown. */
const struct policy_kind_entry *policy_kind_of(const char *tool);
/* The current name of a tool renamed since (ssh.exec -> shell.exec), NULL. */
const char *policy_renamed_tool(const char *old);

/* Splits an absolute path into components ("." and empty ones dropped,
 * ".." kept). Returns the count, or -1 when not absolute or too deep.
 * comps point into buf (a modified copy, at least strlen(path)+1). */
int policy_split(const char *path, int windows, char *buf, char **comps, int max);

/* 1 when arg matches the command-rule pattern pat; strict for allow/ask
 * rules (see tools_policy_glob.c), loose for deny rules. */
int policy_glob(const char *pat, const char *arg, int strict);

/* Root index in roots whose components prefix path's (longest first), -1. */
int policy_find_root(const struct policy_root *roots, int n, char **comps, int ncomps, int windows);

#endif
