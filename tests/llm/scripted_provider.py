#!/usr/bin/env python3
"""Scripted LLM provider for mxfleet tests (stdlib only).

Speaks three wire formats, chosen by the request path:
  .../chat/completions   OpenAI Chat Completions (SSE when "stream": true)
  .../v1/messages        Anthropic Messages (SSE events when "stream": true)
  .../api/chat           Ollama native chat (NDJSON when "stream": true)
  .../audio/transcriptions, .../inference
                         speech to text (OpenAI, whisper.cpp), multipart;
                         the record's "body" lists the form fields

Each request path starts with /s/<scenario>/<run>/ ; the n-th request seen
for one (scenario, run) pair gets step n of the scenario (the last step
repeats once the script runs out). Use a fresh <run> per test. So a provider
configured with
  base_url = http://127.0.0.1:PORT/s/tool_single/r1/v1          (openai)
  base_url = http://127.0.0.1:PORT/s/tool_single/r1             (anthropic, ollama)
replays the "tool_single" scenario. GET /health answers 200.

Every request is appended, before the answer is sent, as one JSON line to the
--record file: {"scenario","run","step","path","headers" (lowercased),"body"}.
Tests read it to assert on what the client sent.

On start the server prints "PORT <n>" on stdout (port 0 = pick a free one).
Run `scripted_provider.py --list` for the scenarios. Stop it with SIGTERM.
"""
import argparse
import email.parser
import json
import signal
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

LS = {"name": "fs.list", "args": {"path": "/var/log"}}

# A step is one answer. Keys:
#   text: final answer text          calls: tool calls [{name, args | raw_args}]
#   echo: answer quoting the tool results the client sent back (" | " joined)
#   status/error/headers: an HTTP error answer
#   sse_error: {type, message}: HTTP 200, some output, then an error event
#   cut: stop the stream mid-way (after `after_text`) without an end marker
#   stall_s: with cut, keep the connection open and silent this long first
#   chunk: argument fragment size when streaming (default 7)
#   interleave: send fragments of parallel calls interleaved by index
#   force_whole: answer with one JSON document even to a streaming request
#   truncated: the answer stops at the output limit (length / max_tokens)
#   delay_s: wait this long before answering (a slow model; a turn stays in flight)
#   follow: a model that obeys whatever it reads: every line "CALL {name, args}"
#           in the tool results (else in the last user message) becomes a call;
#           none left: a text answer (prompt-injection tests)
SCENARIOS = {
    "text_only": [{"text": "Hello from the **scripted** model."}],
    "stt_ok": [{"stt_text": " reboot pi three"}],
    "stt_401": [{"status": 401, "error": {"type": "invalid_request_error", "message": "Incorrect API key"}}],
    "json_to_stream": [{"text": "whole answer", "force_whole": True}],
    "truncated": [{"text": "The first part of a long", "truncated": True}],
    "cli_echo": [{"calls": [{"name": "echo", "args": {"text": "ping"}}]}],
    "tool_single": [{"calls": [LS]}, {"echo": True}],
    "follow": [{"follow": True}],
    "tool_parallel": [
        {"calls": [{"name": "fs.list", "args": {"path": "/a"}},
                   {"name": "fs.list", "args": {"path": "/b"}},
                   {"name": "sys.uptime", "args": {}}]},
        {"echo": True},
    ],
    "tool_split": [
        {"calls": [{"name": "fs.list", "args": {"path": "/var/log/very/long/path", "depth": 2}},
                   {"name": "sys.uptime", "args": {"verbose": True}}],
         "chunk": 2, "interleave": True},
        {"echo": True},
    ],
    "text_tool_call": [
        {"text": "Let me look.\n<tool_call>{\"name\": \"fs.list\", \"arguments\": {\"path\": \"/tmp\"}}</tool_call>"},
        {"echo": True},
    ],
    "retry_after_429": [
        {"status": 429, "headers": {"retry-after": "0", "retry-after-ms": "30"},
         "error": {"type": "rate_limit_error", "code": "rate_limit_exceeded", "message": "slow down"}},
        {"text": "answer after 429"},
    ],
    "overloaded_529": [
        {"status": 529, "error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"text": "answer after 529"},
    ],
    "overloaded_as_429": [
        {"status": 429, "error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"text": "answer after overloaded 429"},
    ],
    "err500_then_ok": [
        {"status": 500, "error": {"type": "server_error", "message": "boom"}},
        {"text": "answer after 500"},
    ],
    "always500": [{"status": 500, "error": {"type": "server_error", "message": "always down"}}],
    "should_retry_false": [{"status": 503, "headers": {"x-should-retry": "false"},
                            "error": {"type": "server_error", "message": "do not retry"}},
                           {"text": "should not be reached"}],
    "insufficient_quota": [{"status": 429, "error": {"type": "insufficient_quota", "code": "insufficient_quota",
                                                      "message": "You exceeded your current quota"}}],
    "unauthorized": [{"status": 401, "error": {"type": "authentication_error", "message": "invalid x-api-key"}}],
    "malformed_args": [
        {"calls": [{"name": "fs.list", "raw_args": "{\"path\": /var/log"}]},
        {"calls": [LS]},
        {"echo": True},
    ],
    "malformed_twice": [{"calls": [{"name": "fs.list", "raw_args": "{\"path\": /var/log"}]}],
    "endless_loop": [{"calls": [LS]}],
    "stream_cut": [{"cut": True, "after_text": "The answer is par"}, {"text": "complete answer after cut"}],
    "sse_error_after_200": [
        {"sse_error": {"type": "overloaded_error", "message": "Overloaded"}, "after_text": "partial"},
        {"text": "answer after sse error"},
    ],
}

LOCK = threading.Lock()
COUNTERS = {}
RECORD = None
NEXT_ID = [0]


def next_id(prefix):
    with LOCK:
        NEXT_ID[0] += 1
        return "%s%06d" % (prefix, NEXT_ID[0])


def tool_results(kind, body):
    """The tool results the client sent after the last assistant turn, in order."""
    out = []
    for m in reversed(body.get("messages", [])):
        role = m.get("role")
        if role == "assistant":
            break
        items = []
        if kind in ("openai", "ollama") and role == "tool":
            items.append(str(m.get("content", "")))
        if kind == "anthropic" and role == "user" and isinstance(m.get("content"), list):
            for b in m["content"]:
                if b.get("type") == "tool_result":
                    c = b.get("content")
                    items.append(c if isinstance(c, str) else json.dumps(c))
        out = items + out
    return out


def last_user_text(body):
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(b.get("text", "") for b in c if isinstance(b, dict))
            return str(c or "")
    return ""


def followed(kind, body):
    """The step of a model that does what the text in front of it says."""
    results = tool_results(kind, body)
    calls = []
    for text in results if results else [last_user_text(body)]:
        for line in text.splitlines():
            at = line.find("CALL {")
            if at < 0:
                continue
            try:
                c = json.loads(line[at + 5:])
                calls.append({"name": c["name"], "args": c["args"]})
            except (ValueError, KeyError, TypeError):
                pass
    return {"calls": calls} if calls else {"text": "Done: " + " | ".join(results)}


def form_fields(ctype, raw):
    """multipart/form-data -> {name: value}; files as {filename, type, size, head}."""
    msg = email.parser.BytesParser().parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
    out = {}
    for part in msg.get_payload() if msg.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        fname = part.get_filename()
        if fname is not None:
            out[name] = {"filename": fname, "type": part.get_content_type(), "size": len(data),
                         "head": data[:16].decode("latin-1")}
        else:
            out[name] = data.decode("utf-8", "replace")
    return out


def args_text(call):
    return call["raw_args"] if "raw_args" in call else json.dumps(call["args"])


def frags(text, n):
    return [text[i:i + n] for i in range(0, len(text), n)] or [""]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/health":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok\n")
        else:
            self.send_error(404)

    def do_POST(self):
        parts = self.path.split("/")
        if len(parts) < 4 or parts[1] != "s" or parts[2] not in SCENARIOS:
            self.send_error(404, "unknown scenario path")
            return
        scen, run = parts[2], parts[3]
        if self.path.endswith("/chat/completions"):
            kind = "openai"
        elif self.path.endswith("/v1/messages"):
            kind = "anthropic"
        elif self.path.endswith("/api/chat"):
            kind = "ollama"
        elif self.path.endswith("/audio/transcriptions") or self.path.endswith("/inference"):
            kind = "stt"
        else:
            self.send_error(404, "unknown API path")
            return
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        if kind == "stt":
            body = form_fields(self.headers.get("content-type", ""), raw)
        else:
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"_unparsed": raw.decode("utf-8", "replace")}
        with LOCK:
            n = COUNTERS.get((scen, run), 0)
            COUNTERS[(scen, run)] = n + 1
            steps = SCENARIOS[scen]
            step = dict(steps[min(n, len(steps) - 1)])
            rec = {"scenario": scen, "run": run, "step": n, "t": time.time(), "path": self.path, "kind": kind,
                   "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
            RECORD.write(json.dumps(rec) + "\n")
            RECORD.flush()
        if step.get("follow"):
            step = followed(kind, body)
        if step.get("echo"):
            step = {"text": "Tool results: " + " | ".join(tool_results(kind, body))}
        self.in_tokens = max(1, len(raw) // 4)
        if step.get("delay_s"):
            time.sleep(float(step["delay_s"]))
        try:
            self.answer(kind, step, bool(body.get("stream")), body.get("model", "m"))
        except (BrokenPipeError, ConnectionResetError):
            pass

    # ---- answers ---------------------------------------------------------
    def answer(self, kind, step, stream, model):
        if "status" in step:
            return self.error_answer(kind, step)
        if "stt_text" in step:
            return self.send_json({"text": step["stt_text"]})
        if not stream or step.get("force_whole"):
            if "sse_error" in step:  # no stream: the same failure as a 529/500 answer
                return self.error_answer(kind, {"status": 529 if kind == "anthropic" else 500,
                                                "error": step["sse_error"]})
            if step.get("cut"):
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "1000")
                self.end_headers()
                self.wfile.write(b'{"choices": [')
                return
            return self.whole(kind, step, model)
        ctype = "application/x-ndjson" if kind == "ollama" else "text/event-stream"
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.end_headers()
        getattr(self, "stream_" + kind)(step, model)

    def error_answer(self, kind, step):
        err = step.get("error", {"type": "error", "message": "error"})
        if kind == "anthropic":
            payload = {"type": "error", "error": {"type": err.get("type"), "message": err.get("message")}}
        elif kind == "ollama":
            payload = {"error": err.get("message")}
        else:
            payload = {"error": {"message": err.get("message"), "type": err.get("type"),
                                 "param": None, "code": err.get("code")}}
        data = json.dumps(payload).encode()
        self.send_response(step["status"])
        self.send_header("content-type", "application/json")
        self.send_header("request-id", "req_" + next_id(""))
        for k, v in step.get("headers", {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, obj):
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def whole(self, kind, step, model):
        calls = step.get("calls", [])
        text = step.get("text")
        if kind == "openai":
            tcs = [{"id": next_id("call_"), "type": "function",
                    "function": {"name": c["name"], "arguments": args_text(c)}} for c in calls]
            msg = {"role": "assistant", "content": text}
            if tcs:
                msg["tool_calls"] = tcs
            self.send_json({"id": next_id("chatcmpl-"), "object": "chat.completion", "model": model,
                            "choices": [{"index": 0, "message": msg,
                                         "finish_reason": "tool_calls" if tcs else
                                         ("length" if step.get("truncated") else "stop")}],
                            "usage": {"prompt_tokens": self.in_tokens, "completion_tokens": 11,
                                      "total_tokens": self.in_tokens + 11}})
        elif kind == "anthropic":
            content = [{"type": "text", "text": text}] if text else []
            for c in calls:
                content.append({"type": "tool_use", "id": next_id("toolu_"), "name": c["name"],
                                "input": c.get("args", {})})
            self.send_json({"id": next_id("msg_"), "type": "message", "role": "assistant", "model": model,
                            "content": content, "stop_reason": "tool_use" if calls else
                            ("max_tokens" if step.get("truncated") else "end_turn"),
                            "usage": {"input_tokens": self.in_tokens, "output_tokens": 11}})
        else:
            msg = {"role": "assistant", "content": text or ""}
            if calls:
                msg["tool_calls"] = [{"function": {"name": c["name"],
                                                   "arguments": c.get("args", c.get("raw_args"))}}
                                     for c in calls]
            self.send_json({"model": model, "message": msg, "done": True,
                            "done_reason": "length" if step.get("truncated") else "stop",
                            "prompt_eval_count": self.in_tokens, "eval_count": 11})

    def sse(self, obj, event=None):
        head = ("event: %s\n" % event) if event else ""
        data = obj if isinstance(obj, str) else json.dumps(obj)
        self.wfile.write((head + "data: " + data + "\n\n").encode())
        self.wfile.flush()

    def stall(self, step):
        """A provider that stops sending mid-stream and never closes (or not
        for stall_s): the client's idle timeout has to notice."""
        time.sleep(float(step.get("stall_s", 0)))

    def stream_openai(self, step, model):
        cid = next_id("chatcmpl-")

        def chunk(delta, finish=None, usage=None, choices=True):
            c = {"id": cid, "object": "chat.completion.chunk", "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
                 "usage": usage}
            self.sse(c)

        chunk({"role": "assistant", "content": ""})
        text = step.get("after_text") if ("cut" in step or "sse_error" in step) else step.get("text")
        for piece in frags(text or "", 5) if text else []:
            chunk({"content": piece})
        if step.get("cut"):
            return self.stall(step)
        if "sse_error" in step:
            e = step["sse_error"]
            self.sse({"error": {"message": e["message"], "type": e["type"], "code": e["type"]}})
            return
        calls = step.get("calls", [])
        n = step.get("chunk", 7)
        pieces = [frags(args_text(c), n) for c in calls]
        for i, c in enumerate(calls):
            chunk({"tool_calls": [{"index": i, "id": next_id("call_"), "type": "function",
                                   "function": {"name": c["name"], "arguments": ""}}]})
            if not step.get("interleave"):
                for p in pieces[i]:
                    chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
        if step.get("interleave"):
            for k in range(max(len(p) for p in pieces)):
                for i in range(len(calls)):
                    if k < len(pieces[i]):
                        chunk({"tool_calls": [{"index": i, "function": {"arguments": pieces[i][k]}}]})
        chunk({}, finish="tool_calls" if calls else ("length" if step.get("truncated") else "stop"))
        chunk(None, usage={"prompt_tokens": self.in_tokens, "completion_tokens": 11,
                           "total_tokens": self.in_tokens + 11}, choices=False)
        self.sse("[DONE]")

    def stream_anthropic(self, step, model):
        self.sse({"type": "message_start", "message": {
            "id": next_id("msg_"), "type": "message", "role": "assistant", "content": [], "model": model,
            "stop_reason": None, "usage": {"input_tokens": self.in_tokens, "output_tokens": 1}}}, "message_start")
        self.sse({"type": "ping"}, "ping")
        idx = 0
        text = step.get("after_text") if ("cut" in step or "sse_error" in step) else step.get("text")
        if text:
            self.sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                     "content_block_start")
            for piece in frags(text, 5):
                self.sse({"type": "content_block_delta", "index": 0,
                          "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
            if step.get("cut"):
                return self.stall(step)
            if "sse_error" in step:
                self.sse({"type": "error", "error": step["sse_error"]}, "error")
                return
            self.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            idx = 1
        n = step.get("chunk", 7)
        for c in step.get("calls", []):
            self.sse({"type": "content_block_start", "index": idx, "content_block": {
                "type": "tool_use", "id": next_id("toolu_"), "name": c["name"], "input": {}}},
                "content_block_start")
            for p in frags(args_text(c), n):
                self.sse({"type": "content_block_delta", "index": idx,
                          "delta": {"type": "input_json_delta", "partial_json": p}}, "content_block_delta")
            self.sse({"type": "content_block_stop", "index": idx}, "content_block_stop")
            idx += 1
        stop = "tool_use" if step.get("calls") else ("max_tokens" if step.get("truncated") else "end_turn")
        self.sse({"type": "message_delta", "delta": {"stop_reason": stop,
                                                     "stop_sequence": None},
                  "usage": {"output_tokens": 11}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")

    def stream_ollama(self, step, model):
        def line(obj):
            self.wfile.write((json.dumps(obj) + "\n").encode())
            self.wfile.flush()

        text = step.get("after_text") if ("cut" in step or "sse_error" in step) else step.get("text")
        for piece in frags(text, 5) if text else []:
            line({"model": model, "message": {"role": "assistant", "content": piece}, "done": False})
        if step.get("cut"):
            return self.stall(step)
        if "sse_error" in step:
            line({"error": step["sse_error"]["message"]})
            return
        calls = step.get("calls", [])
        if calls:
            line({"model": model, "message": {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": c["name"], "arguments": c.get("args", c.get("raw_args"))}} for c in calls]},
                "done": False})
        line({"model": model, "message": {"role": "assistant", "content": ""}, "done": True,
              "done_reason": "length" if step.get("truncated") else "stop",
              "prompt_eval_count": self.in_tokens, "eval_count": 11})


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    ap.add_argument("--record", default="/dev/null", help="append every request as a JSON line here")
    ap.add_argument("--list", action="store_true", help="print the scenario names and exit")
    ap.add_argument("--scenarios", help="JSON file of extra scenarios {name: [step, ...]} (same step keys)")
    a = ap.parse_args()
    if a.scenarios:
        with open(a.scenarios, encoding="utf-8") as f:
            SCENARIOS.update(json.load(f))
    if a.list:
        for k in sorted(SCENARIOS):
            print(k)
        return
    global RECORD
    RECORD = open(a.record, "a", encoding="utf-8")
    srv = Server(("127.0.0.1", a.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever(poll_interval=0.1)
    RECORD.close()


if __name__ == "__main__":
    main()
