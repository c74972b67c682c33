/*
 * tools/tools_catalog.c - THE table of tools. The LLM tool list, `!help` and
 * docs/tools/<name>.md are all generated from it (a test checks the docs), so a
 * tool cannot be described one way and run another. Schemas use only what
 * tools_schema.c validates. Layer: tools/; common/ only.
 */
#include "tools_catalog.h"

#include <string.h>

#define OBJ(props, req) "{\"type\":\"object\",\"properties\":{" props "},\"required\":[" req "],\"additionalProperties\":false}"
#define PATH_P "\"path\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096,\"description\":\"absolute path on the device\"}"
#define REPO_P "\"repo\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096,\"description\":\"absolute path of the git work tree\"}"
#define ARGV_P "\"argv\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":255,\"items\":{\"type\":\"string\",\"maxLength\":4096},\"description\":\"program and arguments; argv[0] must be an absolute path; no shell is involved\"}"
#define CONT_P "\"container\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$\",\"description\":\"container name or id\"}"
#define MAXB_P "\"max_bytes\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":8388608,\"description\":\"read at most this many bytes (capped by the manifest)\"}"

#define PATH_POLICY "path must be under one of the manifest's readable roots (paths.read); resolved where the file is: openat2 RESOLVE_BENEATH on local and wg, the server's realpath checked again on ssh"
#define CMD_POLICY "argv[0] (absolute) and each argument must match a commands rule: deny rules first, then ask, then allow; no match is denied; interpreters always ask; on ssh each argument is quoted for the manifest's declared shell, and refused when that shell cannot carry it"
#define GIT_POLICY "repo must be a work tree with a .git directory under a readable root; git runs without system or global config, with the repository's filter drivers, hooks, fsmonitor, external diff, textconv, pager, signature checks and transports switched off, and never looks for a repository above repo"
#define GIT_ERRORS "'repo ... is outside every readable root'; 'repo ...: expected a git work tree with a .git directory'; 'repo ...: .git is a file/symlink'"
#define PATH_ERRORS "'path ... is outside every readable root'; 'path ... resolves outside its root (symlink or ..)'; 'path ... does not exist'"

static const struct tools_spec catalog[] = {
    {"fs.read", "read a file", "Read a text file on the device. Returns its bytes, cut at max_bytes and the manifest's output cap.",
     OBJ(PATH_P ",\"offset\":{\"type\":\"integer\",\"minimum\":0,\"description\":\"byte offset to start at\"}," MAXB_P, "\"path\""),
     TOOLS_RISK_READ, PATH_POLICY, PATH_ERRORS "; 'path ... is not a regular file' (a FIFO or device is never opened for reading)",
     "{\"path\":\"/var/log/syslog\",\"max_bytes\":4096}"},
    {"fs.list", "list a directory", "List a directory: a JSON array of {name, type, size}, sorted by name.",
     OBJ(PATH_P, "\"path\""), TOOLS_RISK_READ, PATH_POLICY, PATH_ERRORS, "{\"path\":\"/srv/app\"}"},
    {"fs.stat", "file metadata", "Type, size, permission bits, owner and modification time of a path, as JSON.",
     OBJ(PATH_P, "\"path\""), TOOLS_RISK_READ, PATH_POLICY, PATH_ERRORS, "{\"path\":\"/srv/app/config.yml\"}"},
    {"fs.write", "write a file", "Write text to a file: overwrite (default), append, or create (fails if it exists).",
     OBJ(PATH_P ",\"content\":{\"type\":\"string\",\"maxLength\":1048576},\"mode\":{\"type\":\"string\",\"enum\":[\"overwrite\",\"append\",\"create\"]}",
         "\"path\",\"content\""),
     TOOLS_RISK_WRITE, "path must be under a writable root (paths.write); the final component is never followed if it is a symlink; the content goes to a temporary file beside the target, is flushed and renamed over it, so a failed write leaves the old file; a file with several hard links, a FIFO or a device is refused; a replaced file keeps its permission bits, a new file gets 0600 or tools.fs.write.file_mode; asks for approval unless tools.fs.write.approval is 'auto'",
     "'path ... is outside every writable root'; 'path ... resolves outside its root'; 'path ... has N hard links'; 'path ... is not a regular file'; write failures ('the file is unchanged')", "{\"path\":\"/srv/app/motd\",\"content\":\"hello\\n\"}"},
    {"git.status", "git status", "Branch and changed files of a git work tree (git status --porcelain --branch).",
     OBJ(REPO_P, "\"repo\""), TOOLS_RISK_READ, GIT_POLICY, GIT_ERRORS "; git's 'detected dubious ownership' when the repository belongs to another user; git's own exit status", "{\"repo\":\"/srv/app\"}"},
    {"git.log", "recent commits", "Recent commits of a git work tree, one line each (hash, date, author, subject).",
     OBJ(REPO_P ",\"max_count\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000}", "\"repo\""), TOOLS_RISK_READ,
     GIT_POLICY, GIT_ERRORS, "{\"repo\":\"/srv/app\",\"max_count\":10}"},
    {"git.diff", "uncommitted changes", "Uncommitted changes of a git work tree (staged ones with staged=true).",
     OBJ(REPO_P ",\"staged\":{\"type\":\"boolean\"}", "\"repo\""), TOOLS_RISK_READ, GIT_POLICY,
     GIT_ERRORS, "{\"repo\":\"/srv/app\",\"staged\":false}"},
    {"docker.ps", "list containers", "Running containers (all=true: also stopped ones), one JSON object per line.",
     OBJ("\"all\":{\"type\":\"boolean\"}", ""), TOOLS_RISK_READ, "enabled by tools.docker.ps", "docker not installed or not reachable",
     "{\"all\":true}"},
    {"docker.logs", "container logs", "The last lines of a container's logs.",
     OBJ(CONT_P ",\"tail\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10000}", "\"container\""), TOOLS_RISK_READ,
     "enabled by tools.docker.logs", "no such container", "{\"container\":\"web\",\"tail\":200}"},
    {"docker.restart", "restart a container", "Restart a container.", OBJ(CONT_P, "\"container\""), TOOLS_RISK_DESTRUCTIVE,
     "enabled by tools.docker.restart; asks for approval unless its approval is 'auto'", "no such container", "{\"container\":\"web\"}"},
    {"pkg.list", "installed packages", "Installed packages (dpkg-query): name, version, status; optionally filtered by a glob.",
     OBJ("\"pattern\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9.+*?-]{1,128}$\"}", ""), TOOLS_RISK_READ,
     "enabled by tools.pkg.list", "no packages match", "{\"pattern\":\"openssl*\"}"},
    {"pkg.install", "install packages", "Install packages with apt-get (no recommends, non-interactive).",
     OBJ("\"packages\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":64,\"items\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9][a-z0-9.+-]{0,127}$\"}}",
         "\"packages\""),
     TOOLS_RISK_DESTRUCTIVE, "enabled by tools.pkg.install; asks for approval unless its approval is 'auto'",
     "apt-get's exit status and messages", "{\"packages\":[\"htop\"]}"},
    {"proc.list", "list processes", "Processes from /proc: pid, ppid, state, resident memory, name, command line.",
     OBJ("", ""), TOOLS_RISK_READ, "enabled by tools.proc.list", "none", "{}"},
    {"proc.kill", "signal a process", "Send a signal (default TERM) to a process. pid 1 and the agent itself are refused.",
     OBJ("\"pid\":{\"type\":\"integer\",\"minimum\":2,\"maximum\":4194304},\"signal\":{\"type\":\"string\",\"enum\":[\"TERM\",\"KILL\",\"HUP\",\"INT\",\"QUIT\",\"USR1\",\"USR2\",\"STOP\",\"CONT\"]}",
         "\"pid\""),
     TOOLS_RISK_DESTRUCTIVE, "enabled by tools.proc.kill; asks for approval unless its approval is 'auto'",
     "'kill N: No such process'; 'pid N is the agent itself'", "{\"pid\":4242,\"signal\":\"TERM\"}"},
    {"shell.exec", "run a program", "Run one program with arguments, without a shell: no pipes, globbing, variables or && - each argument reaches the program as is.",
     OBJ(ARGV_P ",\"cwd\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4096,\"description\":\"working directory; must be under a readable root\"}", "\"argv\""), TOOLS_RISK_DESTRUCTIVE, CMD_POLICY,
     "'no command rule allows ... with these arguments'; 'argv[0]: expected an absolute program path'; 'cannot run ...'",
     "{\"argv\":[\"/usr/bin/systemctl\",\"status\",\"nginx\"]}"},
    {"shell.eval", "run a shell command line", "Run a command line with the device's shell. Always needs the operator's approval.",
     OBJ("\"command\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":16384}", "\"command\""), TOOLS_RISK_INTERPRETER,
     "enabled by tools.shell.eval; always asks for approval (a manifest setting approval 'auto' fails to load); the shell is /bin/sh -c on local and wg, the account's login shell on ssh",
     "the shell's exit status", "{\"command\":\"df -h | sort -k5 -r | head\"}"},
};

const struct tools_spec *tools_catalog(size_t *n)
{
  *n = sizeof(catalog) / sizeof(catalog[0]);
  return catalog;
}

const struct tools_spec *tools_catalog_find(const char *name)
{
  for (size_t i = 0; name && i < sizeof(catalog) / sizeof(catalog[0]); i++)
    if (strcmp(catalog[i].name, name) == 0)
      return &catalog[i];
  return NULL;
}

const char *tools_risk_str(enum tools_risk r)
{
  switch (r) {
  case TOOLS_RISK_READ: return "read";
  case TOOLS_RISK_WRITE: return "write";
  case TOOLS_RISK_DESTRUCTIVE: return "destructive";
  case TOOLS_RISK_INTERPRETER: return "interpreter";
  }
  return "?";
}

cJSON *tools_catalog_schema(const struct tools_spec *s) { return s ? cJSON_Parse(s->schema) : NULL; }
