#!/usr/bin/python3
"""tests/stt/fake_stt_server.py - a tiny speech-to-text server for tests,
speaking the OpenAI transcription API (POST /v1/audio/transcriptions) and
whisper.cpp's (POST /inference), multipart in, {"text": ...} out.

Usage: fake_stt_server.py PORT_FILE RECORD_FILE
Binds 127.0.0.1 on a free port, writes the port to PORT_FILE (atomically),
and writes every request it received (path, Authorization, fields, file
name/type/size/sha256/first bytes) as JSON to RECORD_FILE. Bearer "wrong"
gets a 401 like OpenAI's. Stdlib only; exits on SIGTERM.
"""
import email.parser
import email.policy
import hashlib
import http.server
import json
import os
import signal
import sys

ANSWERS = {
    "/v1/audio/transcriptions": " reboot pi three\n",
    "/inference": " check disk usage",
}


def parse_multipart(content_type, body):
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields, files = {}, {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "head_hex": data[:48].hex(),
            }
        else:
            fields[name] = data.decode("utf-8")
    return fields, files


class Handler(http.server.BaseHTTPRequestHandler):
    record_file = None

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ctype = self.headers.get("Content-Type", "")
        fields, files = parse_multipart(ctype, body) if ctype.startswith("multipart/form-data") else ({}, {})
        record = {"path": self.path, "authorization": self.headers.get("Authorization"),
                  "content_type": ctype.split(";")[0], "fields": fields, "files": files}
        tmp = self.record_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, self.record_file)
        if self.headers.get("Authorization") == "Bearer wrong":
            self.reply(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        elif self.path in ANSWERS:
            self.reply(200, {"text": ANSWERS[self.path]})
        else:
            self.reply(404, {"error": "no such route"})


def main():
    port_file, record_file = sys.argv[1], sys.argv[2]
    Handler.record_file = record_file
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
