"""`mxfleet config check`: the loader `run` uses, plus llm, speech, manifests,
prompts and the secret files' modes. A good config exits 0; each bad case
exits 1 with one line naming the exact key path. `device list` rejects what
`run` rejects. --online against the real Synapse fixture, the scripted LLM
server and a real sshd: a good config passes; a wrong password, a failing
provider, an SSH host key that is not the pinned one and an unreachable
homeserver each fail, naming what."""

import json
import os
import subprocess

import mxtest
from mxtest import check
from llmfix import ScriptedLLM

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SSHD_FIXTURE = os.path.join(REPO, "tests", "devices", "sshd-fixture")


def mxfleet(*args, env=None):
    p = subprocess.run([mxtest.mxfleet_bin(), *args], capture_output=True, text=True, timeout=60,
                       env=env)
    return p.returncode, p.stdout, p.stderr


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def base(hs_url="http://127.0.0.1:9", server="example.org", user="agent-pc1"):
    return {"homeserver": hs_url, "data_dir": "data",
            "operators": [f"@alice:{server}"],
            "devices": [{"name": "pc1", "matrix": {"user_id": f"@{user}:{server}",
                                                   "password_file": "secrets/pc1.pw"}}]}


def run_check(d, cfg, *extra, name="mxfleet.json"):
    path = os.path.join(d, name)
    write(path, json.dumps(cfg, indent=1), 0o644)
    return mxfleet("config", "check", "--config", path, *extra)


def expect_bad(d, label, cfg, *wanted):
    rc, out, err = run_check(d, cfg, name=f"{label}.json")
    check(rc == 1, f"{label}: exit {rc}, want 1; stdout {out!r} stderr {err!r}")
    for w in wanted:
        check(w in err, f"{label}: stderr lacks {w!r}: {err!r}")
    check("AddressSanitizer" not in err and "runtime error" not in err, f"{label}: crash: {err}")


def offline(d):
    os.makedirs(os.path.join(d, "secrets"))
    write(os.path.join(d, "secrets", "pc1.pw"), "pw\n")
    rc, out, err = run_check(d, base())
    check(rc == 0, f"good config: exit {rc}: {out} {err}")
    check("ok" in out and "built-in read-only default, tools: fs.read" in out, f"good config output: {out!r}")
    # an SSH device without a manifest gets the built-in default too (what SSH serves of it)
    cfg = base()
    write(os.path.join(d, "secrets", "web.key"), "placeholder\n")
    cfg["devices"].append({"name": "web", "matrix": {"user_id": "@agent-web:example.org",
                                                     "password_file": "secrets/pc1.pw"},
                           "backend": {"kind": "ssh", "host": "198.51.100.7", "user": "mxfleet",
                                       "key_file": "secrets/web.key"}})
    rc, out, err = run_check(d, cfg, name="ssh-default.json")
    web = [ln for ln in out.splitlines() if ln.startswith("device web:")]
    check(rc == 0 and web and "built-in read-only default, tools: fs.read" in web[0],
          f"ssh device's default manifest: rc {rc} {out!r} {err!r}")

    # the documented llm/speech mistakes, each with its exact key path
    cfg = base()
    cfg["llm"] = {"providers": [{"name": "local", "url": "http://127.0.0.1:11434"}]}
    expect_bad(d, "llm-url", cfg, "llm.providers[0]: unknown key 'url'")
    cfg = base()
    cfg["speech"] = {"engine": "pocketsphinx"}
    expect_bad(d, "speech-engine", cfg, "speech: unknown key 'engine'")
    # a manifest that does not load
    write(os.path.join(d, "broken.json"), '{"version": 1, "tools": {"fs.reed": {}}}')
    cfg = base()
    cfg["devices"][0]["manifest"] = "broken.json"
    expect_bad(d, "manifest", cfg, "devices[0].manifest", "fs.reed")
    # a prompt template that is missing, and one with an unknown placeholder
    cfg = base()
    cfg["devices"][0]["prompt"] = "prompts/missing.md"
    expect_bad(d, "prompt-missing", cfg, "devices[0].prompt: cannot read")
    write(os.path.join(d, "bad.md"), "You are {{devcie}}.\n")
    cfg = base()
    cfg["devices"][0]["prompt"] = "bad.md"
    cfg["llm"] = {"providers": [{"name": "l", "kind": "ollama", "base_url": "http://127.0.0.1:9",
                                 "model": "m"}]}
    expect_bad(d, "prompt-placeholder", cfg, "devices[0].prompt", "devcie")
    # secrets readable by others / owned by someone else
    os.chmod(os.path.join(d, "secrets", "pc1.pw"), 0o644)
    expect_bad(d, "mode", base(), "devices[0].matrix.password_file", "mode 0644")
    os.chmod(os.path.join(d, "secrets", "pc1.pw"), 0o600)
    write(os.path.join(d, "llm.key"), "sk-test\n", 0o604)
    cfg = base()
    cfg["llm"] = {"providers": [{"name": "o", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                                 "model": "m", "api_key_file": "llm.key"}]}
    expect_bad(d, "llm-key-mode", cfg, "llm.providers[0].api_key_file", "mode 0604")
    if os.geteuid() == 0:
        os.chown(os.path.join(d, "llm.key"), 65534, 65534)
        os.chmod(os.path.join(d, "llm.key"), 0o600)
        rc, _, err = run_check(d, cfg, name="owner.json")
        check(rc == 0, f"root may check files it does not own: {rc} {err}")
    # what run rejects, device list rejects too (its own parser accepted it)
    cfg = base()
    cfg["llm"] = {"providers": [{"name": "local", "url": "http://127.0.0.1:11434"}]}
    path = os.path.join(d, "llm-url.json")
    rc, out, err = mxfleet("device", "list", "--config", path)
    check(rc == 1 and "llm.providers[0]: unknown key 'url'" in err,
          f"device list accepted a config run rejects: rc {rc} {out!r} {err!r}")
    cfg = base()
    cfg["devices"][0]["bogus"] = 1
    path = os.path.join(d, "bogus.json")
    write(path, json.dumps(cfg))
    rc, out, err = mxfleet("device", "show", "pc1", "--config", path)
    check(rc == 1 and "devices[0].bogus" in err, f"device show: rc {rc} {out!r} {err!r}")
    # the documented default path: --config omitted, $MXFLEET_CONFIG used
    env = dict(os.environ, MXFLEET_CONFIG=os.path.join(d, "mxfleet.json"))
    rc, out, err = mxfleet("config", "check", env=env)
    check(rc == 0 and "mxfleet.json: ok" in out, f"$MXFLEET_CONFIG: rc {rc} {out!r} {err!r}")
    rc, out, err = mxfleet("config", "check", "--bogus")
    check(rc == 2, f"unknown option: rc {rc} {err!r}")


def ssh_device(d, sshd, hs, known):
    """A device on the sshd fixture, its Matrix user registered."""
    local = mxtest.unique("agent-web")
    _, pw = hs.register(local)
    write(os.path.join(d, "secrets", "web.pw"), pw + "\n")
    port = int(open(os.path.join(sshd, "port")).read())
    user = open(os.path.join(sshd, "user")).read().strip()
    key = os.path.join(d, "secrets", "web.key")
    with open(os.path.join(sshd, "user_ed25519")) as f:
        write(key, f.read())
    return {"name": "web", "matrix": {"user_id": f"@{local}:{hs.name}", "password_file": "secrets/web.pw"},
            "backend": {"kind": "ssh", "host": "127.0.0.1", "port": port, "user": user, "key_file": key,
                        "known_hosts": known}}


def online(d):
    os.environ["MXFLEET_TEST_LLM_KEY"] = "sk-test-not-a-real-key-0123456789"
    sshd = os.path.join(d, "sshd")
    os.chmod(d, 0o755)  # the fixture's unprivileged login reads its authorized_keys below d
    subprocess.run([SSHD_FIXTURE, "start", sshd], check=True, capture_output=True)
    try:
        online_with_sshd(d, sshd)
    finally:
        subprocess.run([SSHD_FIXTURE, "stop", sshd], capture_output=True)


def online_with_sshd(d, sshd):
    port = int(open(os.path.join(sshd, "port")).read())
    known = os.path.join(d, "known_hosts")
    with open(os.path.join(sshd, "host_ed25519.pub")) as f:
        kt, kb = f.read().split()[:2]
    write(known, f"[127.0.0.1]:{port} {kt} {kb}\n", 0o644)
    hs = mxtest.Homeserver.from_env()
    with hs, ScriptedLLM() as llm:
        local = mxtest.unique("agent-pc1")
        _, pw = hs.register(local)
        write(os.path.join(d, "secrets", "pc1.pw"), pw + "\n")
        cfg = base(hs.url, hs.name, local)
        cfg["devices"].append(ssh_device(d, sshd, hs, known))
        cfg["llm"] = {"providers": [llm.provider("main", "text_only", "chk1")]}
        rc, out, err = run_check(d, cfg, "--online", name="online.json")
        check(rc == 0, f"--online good: rc {rc} {out!r} {err!r}")
        check(f"homeserver {hs.url}: ok" in out, out)
        check("(password login)" in out and "backend pc1 (local): ok" in out, out)
        check("backend web (ssh): ok" in out, f"ssh backend not checked: {out!r}")
        # a host key that is not the pinned one: refused, the device named
        wrong = os.path.join(d, "known_hosts.wrong")
        write(wrong, f"[127.0.0.1]:{port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", 0o644)
        cfg["devices"][1]["backend"]["known_hosts"] = wrong
        rc, out, err = run_check(d, cfg, "--online", name="online-hostkey.json")
        check(rc == 1 and "devices[1].backend" in err, f"wrong host key passed: rc {rc} {out!r} {err!r}")
        cfg["devices"].pop()
        check(llm.requests("chk1"), "--online made no request to the LLM provider")
        # a password login is logged out again: no device is left behind
        c = hs.login(local, pw)
        devices = c.request("GET", "/devices")["devices"]
        left = [x for x in devices if x.get("display_name") == "mxfleet config check"]
        check(not left, f"config check left devices behind: {left}")

        cfg["llm"] = {"providers": [llm.provider("main", "unauthorized", "chk2")]}
        write(os.path.join(d, "secrets", "pc1.pw"), "wrong-password\n")
        rc, out, err = run_check(d, cfg, "--online", name="online-bad.json")
        check(rc == 1, f"--online bad: rc {rc} {out!r} {err!r}")
        check("devices[0].matrix" in err and local in err, f"wrong password not named: {err!r}")
        check("llm.providers" in err and "main" in out, f"failing provider not named: {out!r} {err!r}")

        cfg["homeserver"] = "http://127.0.0.1:9"
        rc, out, err = run_check(d, cfg, "--online", name="online-nohs.json")
        check(rc == 1 and "homeserver: http://127.0.0.1:9 unreachable" in err,
              f"unreachable homeserver: rc {rc} {err!r}")


def unit_runs_check():
    """The shipped unit checks the very file it runs before starting it."""
    with open(os.path.join(REPO, "packaging", "systemd", "mxfleet.service")) as f:
        lines = [ln.strip() for ln in f if not ln.startswith("#")]
    start = [ln for ln in lines if ln.startswith("ExecStart=")]
    pre = [ln for ln in lines if ln.startswith("ExecStartPre=")]
    check(len(start) == 1 and start[0].split()[1:2] == ["run"], f"ExecStart: {start}")
    cfg = start[0].split("--config", 1)[1].split()[0]
    want = start[0].split("=", 1)[1].split()[0] + " config check --config " + cfg
    check(any(p.split("=", 1)[1].lstrip("-+!") == want for p in pre), f"ExecStartPre lacks {want!r}: {pre}")


def test():
    unit_runs_check()
    d = mxtest.workdir("cfgcheck-")
    offline(d)
    online(d)


mxtest.run(test)
