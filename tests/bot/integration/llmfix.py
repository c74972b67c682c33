"""Shared fixture for the bot's LLM integration tests: the scripted
OpenAI/Anthropic-compatible provider (tests/llm/scripted_provider.py) as a
subprocess on a free loopback port, recording every request it gets."""

import json
import os
import subprocess
import sys

import mxtest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SCRIPT = os.path.join(REPO, "tests", "llm", "scripted_provider.py")


class ScriptedLLM:
    def __init__(self, extra_scenarios=None):
        self.dir = mxtest.workdir("llm-")
        self.record = os.path.join(self.dir, "requests.jsonl")
        args = [sys.executable, SCRIPT, "--port", "0", "--record", self.record]
        if extra_scenarios:
            args += ["--scenarios", extra_scenarios]
        self.proc = subprocess.Popen(args,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline().strip()
        mxtest.check(line.startswith("PORT "), f"scripted provider did not start: {line!r}")
        self.port = int(line.split()[1])

    def provider(self, name, scenario, run, kind="openai"):
        base = f"http://127.0.0.1:{self.port}/s/{scenario}/{run}" + ("/v1" if kind == "openai" else "")
        return {"name": name, "kind": kind, "model": "test-model", "base_url": base,
                "api_key_env": "MXFLEET_TEST_LLM_KEY", "timeout_ms": 10000, "stream": True,
                "retry": {"max_attempts": 2, "initial_backoff_ms": 10, "max_backoff_ms": 50}}

    def requests(self, run=None):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            reqs = [json.loads(line) for line in f if line.strip()]
        return [r for r in reqs if run is None or r.get("run") == run]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def llm_block(providers, route):
    return {"providers": providers, "routes": {"default": route},
            "agent": {"prompts_dir": os.path.join(REPO, "prompts")}}


def write_manifest(directory, manifest):
    path = os.path.join(directory, "manifest.json")
    with open(path, "w") as f:
        json.dump(manifest, f)
    return path


def react(user, room_id, event_id, key):
    """user annotates event_id with key (an m.reaction, as Element sends)."""
    txn = user.next_txn()
    return user.request("PUT", f"/rooms/{mxtest.q(room_id)}/send/m.reaction/{mxtest.q(txn)}",
                        {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}})
