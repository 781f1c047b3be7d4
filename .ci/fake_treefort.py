#!/usr/bin/env python3
"""A stand-in for Treefort's API for the schemathesis run: the OAuth token endpoint and the
subscription POST/PATCH, always answering as a healthy Treefort would. Loopback only."""
import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drain(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def do_POST(self):
        self._drain()
        if self.path == "/oauth2/token":
            self._answer(200, {"access_token": "fake", "token_type": "Bearer", "expires_in": 3600})
        elif self.path == "/v1/subscriptions":
            self._answer(201, {"id": "tf_" + uuid.uuid4().hex})
        else:
            self._answer(404, {"error": "not found"})

    def do_PATCH(self):
        self._drain()
        if self.path.startswith("/v1/subscriptions/"):
            self._answer(200, {"id": self.path.rsplit("/", 1)[-1]})
        else:
            self._answer(404, {"error": "not found"})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
