"""Every example in the docs runs (README.md, CHANGELOG.md, docs/, examples/).

Fenced blocks say what they are in their info string:
  ```json            a complete mxfleet config: `mxfleet config check` must pass
  ```json members    top-level config members ("llm": {...}): put into a
                     minimal config, which must pass `mxfleet config check`
  ```json members P  members of the object at key path P of that minimal
                     config ("bot", "devices[0].matrix", "llm.providers[0]";
                     llm and speech get a small working block to add to)
  ```json manifest   a device manifest: a config naming it must pass the check
  ```json fragment   part of a config shown out of context: skipped (the only
                     kind that is not checked)
  ```json agent      an mxfleet-agent config: `mxfleet-agent --check-config`
  ```json wire       a protocol message (HTTP body, audit record): must parse
  ```json schema     a tool's JSON Schema (docs/tools, generated): must parse
  ```json tool-args  a tool call's arguments (docs/tools): must parse
  ```sh, ``` (none)  shell lines; each `mxfleet ...` line is a CLI example
Any other word after json is an error, so nothing is skipped by accident.
CLI examples (in blocks and in `inline code`) run with --help appended: the
subcommand must exist and every option must be known (exit 0, no "unknown"
or "unrecognized"). Synopsis brackets ([--device NAME], a|b, ...) are
opened up first. Read-only commands (config check, audit verify/show,
device list/show) also run for real, as written, against the first complete
config of the same page (else a minimal one) given as $MXFLEET_CONFIG or
in place of their --config value: no usage error ("is required", "unknown")
may come back. Files a config names (password
files, keys, manifests, prompts) are created in a scratch directory, absolute
ones under it as a stand-in root (/etc/mxfleet/x -> SCRATCH/etc/mxfleet/x,
data_dir too, so nothing outside is touched): taken from the repository when
a file of that name exists next to the page or under examples/, else a
placeholder of the right kind (secrets mode 0600).
examples/*.json is checked as a config and examples/manifests/*.json as
manifests. Exit 1 with one line per failing example (file:line: why)."""

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MXFLEET_BIN") or os.path.join(REPO, "build", "bot", "mxfleet")
AGENT_BIN = os.environ.get("MXFLEET_AGENT_BIN") or os.path.join(os.path.dirname(os.path.dirname(BIN)),
                                                                 "devices", "agent", "mxfleet-agent")
MINIMAL = {"homeserver": "http://127.0.0.1:8008", "data_dir": "data",
           "operators": ["@alice:example.org"],
           "devices": [{"name": "pc1", "matrix": {"user_id": "@agent-pc1:example.org",
                                                  "password_file": "secrets/pc1.pw"}}]}
JSON_KINDS = {"": "config", "members": "members", "manifest": "manifest", "fragment": "fragment",
              "agent": "agent", "wire": "wire", "schema": "schema", "tool-args": "tool-args"}
PLACEHOLDER_SECRET = "bXhmbGVldC1kb2MtdGVzdC1wbGFjZWhvbGRlci1rZXk=\n"  # 32 bytes, base64
failures = []
counts = {}


def fail(where, msg):
    failures.append(f"{where}: {msg}")


def counted(kind):
    counts[kind] = counts.get(kind, 0) + 1


# ---- extraction ----

def blocks(path):
    """(info, first line number, text) of each fenced block."""
    out, info, start, lines = [], None, 0, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = re.match(r"^\s*```(.*)$", line)
            if m and info is None:
                info, start, lines = m.group(1).strip(), n + 1, []
            elif m and line.strip() == "```":
                out.append((info, start, "".join(lines)))
                info = None
            elif info is not None:
                lines.append(line)
    return out


def inline_commands(path):
    """`mxfleet ...` in inline code outside fenced blocks, with line numbers."""
    out, fenced = [], False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if re.match(r"^\s*```", line):
                fenced = not fenced
                continue
            if fenced:
                continue
            for m in re.finditer(r"`((?:sudo )?(?:[^\s=`]*/)?mxfleet(?:-agent)? [^`]+)`", line):
                out.append((n, m.group(1)))
    return out


def shell_commands(text, start):
    """Joined (backslash continuations) lines that invoke mxfleet."""
    out, acc, first = [], "", None
    for i, line in enumerate(text.splitlines()):
        line = re.sub(r"^\s*(\$|#)\s+", "", line) if re.match(r"^\s*\$\s", line) else line
        if first is None:
            first = start + i
        if line.rstrip().endswith("\\"):
            acc += line.rstrip()[:-1] + " "
            continue
        acc += line
        if re.match(r"^\s*(sudo\s+)?([^\s=]*/)?mxfleet(-agent)?\s", acc):
            out.append((first, acc.split("#", 1)[0].strip() if " #" in acc else acc.strip()))
        acc, first = "", None
    return out


# ---- configs ----

SECRET_KEYS = {"password_file", "key_file", "hmac_key_file", "shared_secret_file", "admin_token_file",
               "api_key_file"}


FILE_KEYS = SECRET_KEYS | {"manifest", "prompt", "known_hosts"}
DIR_KEYS = {"data_dir", "prompts_dir", "tmp_dir"}


def rebase_paths(node, scratch, key=None):
    """Yields (key, path) for every file a config names, after moving each
    absolute path (and absolute directories) under scratch in place."""
    if isinstance(node, dict):
        for k, v in list(node.items()):
            if isinstance(v, str) and (k in FILE_KEYS or k in DIR_KEYS) and os.path.isabs(v):
                node[k] = v = scratch + v
                if k in DIR_KEYS:
                    os.makedirs(v, exist_ok=True)
            if isinstance(v, str) and k in FILE_KEYS:
                yield k, v
            else:
                yield from rebase_paths(v, scratch, k)
    elif isinstance(node, list):
        for v in node:
            yield from rebase_paths(v, scratch, key)


def provide(scratch, page_dir, key, rel):
    """Creates the file a config names, under scratch."""
    dst = rel if os.path.isabs(rel) else os.path.join(scratch, rel)
    rel = os.path.relpath(dst, scratch) if dst.startswith(scratch + "/") else rel
    if os.path.exists(dst):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    for cand in (os.path.join(page_dir, rel), os.path.join(REPO, "examples", rel),
                 os.path.join(REPO, rel)):
        if os.path.isfile(cand) and key in ("manifest", "prompt"):
            shutil.copyfile(cand, dst)
            return
    if key == "manifest":
        shutil.copyfile(os.path.join(REPO, "examples", "manifests", "pc1.json"), dst)
    elif key == "prompt":
        shutil.copyfile(os.path.join(REPO, "prompts", "device.md"), dst)
    elif key == "known_hosts":
        open(dst, "w").close()
    else:
        with open(dst, "w") as f:
            f.write(PLACEHOLDER_SECRET)
        os.chmod(dst, 0o600)


def env_for(cfg):
    env = dict(os.environ)
    env.pop("MXFLEET_CONFIG", None)
    for m in re.finditer(r'"api_key_env"\s*:\s*"([^"]+)"', json.dumps(cfg)):
        env[m.group(1)] = "sk-placeholder-for-the-doc-test"
    return env


def in_scratch(cfg, page_dir, fn, name="mxfleet.json"):
    """Writes cfg and the files it names into a scratch dir, returns
    fn(config_path, env, scratch)."""
    scratch = tempfile.mkdtemp(prefix="docex-")
    try:
        cfg = json.loads(json.dumps(cfg))
        for key, rel in list(rebase_paths(cfg, scratch)):
            provide(scratch, page_dir, key, rel)
        path = os.path.join(scratch, name)
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        return fn(path, env_for(cfg), scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_config(where, cfg, page_dir, agent=False):
    """`mxfleet config check` (or `mxfleet-agent --check-config`) on cfg."""
    def run(path, env, scratch):
        cmd = [AGENT_BIN, "--config", path, "--check-config"] if agent else \
              [BIN, "config", "check", "--config", path]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        if p.returncode != 0:
            fail(where, f"{os.path.basename(cmd[0])} check exit {p.returncode}: "
                        f"{p.stderr.strip().replace(scratch, '')}")
        return p.returncode == 0
    return in_scratch(cfg, page_dir, run, "agent.json" if agent else "mxfleet.json")


BASE_BLOCKS = {"llm": {"providers": [{"name": n, "kind": "ollama", "base_url": "http://127.0.0.1:11434",
                                      "model": "qwen2.5:7b"} for n in ("main", "backup", "local")]},
               "speech": {"provider": "whisper.cpp", "base_url": "http://127.0.0.1:8080"}}


def members_at(at, value):
    """The minimal config with value's members merged into the object at
    key path `at` (created when missing)."""
    cfg = json.loads(json.dumps(MINIMAL))
    node = cfg
    for part in [p for p in re.split(r"\.", at) if p] if at else []:
        m = re.match(r"^([^\[]+)(?:\[(\d+)\])?$", part)
        key, idx = m.group(1), m.group(2)
        if key not in node:
            node[key] = json.loads(json.dumps(BASE_BLOCKS.get(key, [] if idx is not None else {})))
        node = node[key]
        if idx is not None:
            while len(node) <= int(idx):
                node.append({})
            node = node[int(idx)]
    node.update(value)
    return cfg


def check_json_block(path, line, kind, text, first_config, at=""):
    where = f"{os.path.relpath(path, REPO)}:{line}"
    counted(kind)
    if kind == "fragment":
        return
    try:
        value = json.loads(text if kind != "members" else "{" + text + "}")
    except ValueError as e:
        hint = (" - a plain ```json block is a complete config; declare a piece of one as "
                "```json members PATH (checked in a minimal config) or ```json fragment "
                "(see tests/docs/test_doc_examples.py)") if kind == "config" else ""
        fail(where, f"```json {kind}: not valid JSON ({e}){hint}")
        return
    page_dir = os.path.dirname(path)
    if kind == "config":
        if check_config(where, value, page_dir) and not first_config:
            first_config.append(value)
    elif kind == "members":
        check_config(where, members_at(at, value), page_dir)
    elif kind == "manifest":
        check_manifest(where, value)
    elif kind == "agent":
        check_config(where, value, page_dir, agent=True)


def check_manifest(where, manifest):
    scratch = tempfile.mkdtemp(prefix="docex-")
    try:
        with open(os.path.join(scratch, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        cfg = json.loads(json.dumps(MINIMAL))
        cfg["devices"][0]["manifest"] = "manifest.json"
        if manifest.get("platform") in ("macos", "windows"):
            cfg["devices"][0]["os"] = manifest["platform"]
        check_config(where, cfg, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---- CLI ----

def open_synopsis(words):
    """[--device NAME] -> --device NAME; ssh|wg -> ssh; "--ssh ..." -> "--ssh
    VALUE"; other ... and (text) dropped."""
    out = []
    for w in words:
        w = w.replace("[", "").replace("]", "")
        if w in ("...", "\u2026") and out and out[-1].startswith("--"):
            out.append("VALUE")
            continue
        if not w or w in ("...", "\u2026") or w.startswith("("):
            continue
        out.append(w.split("|")[0])
    return out


def check_cli(where, cmd, first_config, page_dir):
    counted("cli")
    try:
        words = shlex.split(cmd)
    except ValueError as e:
        fail(where, f"cannot split '{cmd}': {e}")
        return
    if words and words[0] == "sudo":
        words = words[1:]
    binary = AGENT_BIN if words[0].endswith("mxfleet-agent") else BIN
    words = open_synopsis(words[1:])
    if "--help" in words or "-h" in words:
        args = words
    else:
        args = words + ["--help"]
    p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
    text = p.stdout + p.stderr
    if p.returncode != 0 or re.search(r"unknown|unrecognized|invalid option", text, re.I):
        fail(where, f"'{cmd}' does not parse: {os.path.basename(binary)} {' '.join(args)} exit {p.returncode}: "
                    f"{text.strip()[:300]}")
        return
    if tuple(words[:2]) in READ_ONLY and "--online" not in words:
        counted("cli-run")
        run_for_real(where, cmd, words, first_config[0] if first_config else MINIMAL, page_dir)


# Commands that change nothing: run for real, reading the page's config (or
# the minimal one) from $MXFLEET_CONFIG, or from --config when the example
# gives one. A usage error there means the example does not work as written.
READ_ONLY = {("config", "check"), ("audit", "verify"), ("audit", "show"), ("device", "list"),
             ("device", "show")}


def run_for_real(where, cmd, words, cfg, page_dir):
    def run(path, env, scratch):
        args = list(words)
        if "--config" in args:
            args[args.index("--config") + 1] = path
        env["MXFLEET_CONFIG"] = path
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, env=env)
        text = (p.stdout + p.stderr).replace(scratch, "")
        if re.search(r"is required|unknown|unrecognized|usage:|cannot open", text, re.I) or \
                p.returncode not in (0, 1, 2) or (words[:2] == ["config", "check"] and p.returncode):
            fail(where, f"'{cmd}' run as written: exit {p.returncode}: {text.strip()[:300]}")
    in_scratch(cfg, page_dir, run)


# ---- driver ----

def pages():
    found = [os.path.join(REPO, "README.md"), os.path.join(REPO, "CHANGELOG.md")]
    for pattern in ("docs/**/*.md", "examples/**/*.md", "prompts/*.md", "packaging/**/*.md"):
        found += glob.glob(os.path.join(REPO, pattern), recursive=True)
    return sorted(set(found))


def check_page(path):
    first_config = []
    cli = []
    for info, line, text in blocks(path):
        words = info.split()
        lang = words[0] if words else ""
        if lang == "json":
            qual = " ".join(words[1:2])
            kind = JSON_KINDS.get(qual)
            at = " ".join(words[2:])
            if kind is None or (at and kind != "members"):
                fail(f"{os.path.relpath(path, REPO)}:{line}",
                     f"```{info}: expected json followed by one of "
                     f"{', '.join(k or '(none)' for k in JSON_KINDS)} (members may name a key path)")
                continue
            check_json_block(path, line, kind, text, first_config, at)
        elif lang in ("", "sh", "shell", "console", "bash"):
            cli += shell_commands(text, line)
    for line, cmd in inline_commands(path):
        cli.append((line, cmd))
    for line, cmd in cli:
        check_cli(f"{os.path.relpath(path, REPO)}:{line}", cmd, first_config, os.path.dirname(path))


def main():
    if not os.access(BIN, os.X_OK):
        print(f"test_doc_examples: {BIN} is not built", file=sys.stderr)
        return 1
    for path in pages():
        check_page(path)
    for path in sorted(glob.glob(os.path.join(REPO, "examples", "*.json"))):
        with open(path) as f:
            counted("config")
            check_config(os.path.relpath(path, REPO), json.load(f), os.path.dirname(path))
    for path in sorted(glob.glob(os.path.join(REPO, "examples", "manifests", "*.json"))):
        with open(path) as f:
            counted("manifest")
            check_manifest(os.path.relpath(path, REPO), json.load(f))
    print("checked: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    for f in failures:
        print(f"FAIL {f}")
    if failures:
        print(f"{len(failures)} doc example(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
