"""A notification webhook receiving what Tally's `WebhookSink` sends, for tests.

It records every arrival (id, destination, arrival and send time, whether the signature is valid)
and does NOT deduplicate: a message that arrives twice is counted twice, so a test can see
from `GET /stats` both that nothing was lost and how often Tally re-sent.

Webhook API (what Tally sends):
  POST /  (any path)  {"id", "destination", "kind", "body": <JSON>, "attempt": n, "sent_at": ms}
          headers X-Tally-Notification-Id: <id>
                  X-Tally-Signature: sha256=<hex HMAC-SHA256 of the body bytes under the secret>
          -> 200 {"ok": true}, or as the control mode says

Test controls (not part of the webhook API):
  POST /control {"mode": "ok"}                                       back to normal
                {"mode": "throttle", "count": 3, "retry_after": 2}   429 {"retry_after": 2}
                    "retry_after_in": "header" sends `Retry-After: 2` and no body field instead
                {"mode": "fail", "count": 2, "status": 503}          5xx (default 500)
                {"mode": "reject", "count": 1, "status": 400}        4xx (default 400)
                {"mode": "slow", "count": 1, "delay_ms": 3000}       answer 200 only after the delay
                Every mode but "ok" may name "destination": it then applies only to requests
                for that destination (others are answered 200). `count` is how many requests
                the mode applies to before "ok" again; without it, until the next control call.
  GET  /stats   {"arrivals": [{"id", "destination", "time", "sent_at", "signature_valid", "attempt",
                               "status"}],
                 "counts": {id: n}, "delivered": {id: n answered 2xx}, "total": n,
                 "invalid_signatures": n}
                `time` is time.time() at arrival, `sent_at` the body's (null if absent), both
                in seconds.
  POST /reset   forget every arrival, back to "ok"

Run standalone: python3 webhook_sim.py --port N [--secret S] [--port-file PATH] (the bound
port is written to PATH once listening; it binds 127.0.0.1 only). Import:
WebhookSimulator(secret=...).start().
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "topups"))
from provider_sim import BackgroundServer, serve  # noqa: E402

MODES = {"ok", "throttle", "fail", "reject", "slow"}
MAX_BODY = 256 * 1024


class Log:
    """Every arrival and the control mode of one simulator, behind one lock (handlers run on
    a thread per connection)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self._arrivals = []
            self._mode = {"mode": "ok", "count": None}

    def set_mode(self, mode: dict):
        with self._lock:
            self._mode = mode

    def take_mode(self, destination: str) -> dict:
        """The mode this request runs under; counts it against the mode's `count` when it
        applies to the request's destination."""
        with self._lock:
            current = dict(self._mode)
            if current["mode"] == "ok" or current.get("destination") not in (None, destination):
                return {"mode": "ok"}
            if current["count"] is not None:
                self._mode["count"] -= 1
                if self._mode["count"] <= 0:
                    self._mode = {"mode": "ok", "count": None}
            return current

    def record(self, arrival: dict):
        with self._lock:
            self._arrivals.append(arrival)

    def stats(self) -> dict:
        with self._lock:
            arrivals = [dict(a) for a in self._arrivals]
        counts, delivered = {}, {}
        for arrival in arrivals:
            counts[arrival["id"]] = counts.get(arrival["id"], 0) + 1
            if 200 <= arrival["status"] < 300:
                delivered[arrival["id"]] = delivered.get(arrival["id"], 0) + 1
        return {
            "arrivals": arrivals,
            "counts": counts,
            "delivered": delivered,
            "total": len(arrivals),
            "invalid_signatures": sum(1 for a in arrivals if not a["signature_valid"]),
        }


class WebhookHandler(BaseHTTPRequestHandler):
    # Keep-alive, as receivers' servers do, so the sink's pooled connections are exercised.
    protocol_version = "HTTP/1.1"
    server_version = "WebhookSim/1"

    @property
    def log(self) -> Log:
        return self.server.log

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("webhook_sim: " + (format % args) + "\n")

    def do_GET(self):
        if self.path == "/stats":
            self.reply(200, self.log.stats())
        else:
            self.reply(404, {"error": f"no route GET {self.path}"})

    def do_POST(self):
        raw = self.read_body()
        if raw is None:
            return
        if self.path == "/control":
            self.control(raw)
        elif self.path == "/reset":
            self.log.reset()
            self.reply(200, {"ok": True})
        else:
            self.notification(raw)

    # -- webhook --

    def notification(self, raw: bytes):
        arrived = time.time()
        expected = "sha256=" + hmac.new(self.server.secret.encode(), raw, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, self.headers.get("X-Tally-Signature", ""))
        try:
            body = json.loads(raw)
            notification_id, destination = body["id"], body["destination"]
            attempt = int(body.get("attempt", 0))
            sent_at = body["sent_at"] / 1000 if isinstance(body.get("sent_at"), (int, float)) else None
        except (ValueError, KeyError, TypeError):
            self.reply(400, {"error": "not a notification"})
            return
        if self.headers.get("X-Tally-Notification-Id") != notification_id:
            valid = False
        mode = self.log.take_mode(destination)
        status, reply, headers = 200, {"ok": True}, {}
        if mode["mode"] == "throttle":
            retry_after = mode.get("retry_after", 1)
            status = 429
            if mode.get("retry_after_in") == "header":
                reply, headers = {"error": "slow down"}, {"Retry-After": str(retry_after)}
            else:
                reply = {"error": "slow down", "retry_after": retry_after}
        elif mode["mode"] == "fail":
            status, reply = int(mode.get("status", 500)), {"error": "temporarily broken"}
        elif mode["mode"] == "reject":
            status, reply = int(mode.get("status", 400)), {"error": "refused"}
        elif mode["mode"] == "slow":
            time.sleep(int(mode.get("delay_ms", 1000)) / 1000)
        self.log.record({"id": notification_id, "destination": destination, "time": arrived, "sent_at": sent_at,
                         "signature_valid": valid, "attempt": attempt, "status": status})
        self.reply(status, reply, headers)

    # -- test controls --

    def control(self, raw: bytes):
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.reply(400, {"error": "body is not JSON"})
            return
        if not isinstance(body, dict) or body.get("mode") not in MODES:
            self.reply(400, {"error": f"mode must be one of {sorted(MODES)}"})
            return
        mode = dict(body)
        mode["count"] = None if body.get("count") is None else int(body["count"])
        self.log.set_mode(mode)
        self.reply(200, {"ok": True})

    # -- plumbing --

    def read_body(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            self.reply(411, {"error": "a Content-Length of at most 256 KiB is required"})
            return None
        return self.rfile.read(int(length)) if int(length) else b""

    def reply(self, status: int, body: dict, headers: "dict | None" = None):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The sender gave up (its timeout) before this answer; nothing left to tell it.
            self.close_connection = True


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    # Handlers that sleep (slow mode) must not hold up shutdown.
    block_on_close = False

    def __init__(self, port: int, secret: str, verbose: bool = False):
        super().__init__(("127.0.0.1", port), WebhookHandler)
        self.log = Log()
        self.secret = secret
        self.verbose = verbose

    def handle_error(self, request, client_address):
        # A sender killed mid-request (tools/chaos does that) is not the simulator's error.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class WebhookSimulator(BackgroundServer):
    """The simulator in a background thread of this process, for pytest."""

    def __init__(self, port: int = 0, secret: str = "test-secret", verbose: bool = False):
        super().__init__(WebhookServer(port, secret, verbose), "webhook-sim")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    @property
    def log(self) -> Log:
        return self._server.log


def main() -> int:
    parser = argparse.ArgumentParser(description="Notification webhook simulator for Tally's tests.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--secret", default=os.environ.get("NOTIFY_WEBHOOK_SECRET", "test-secret"),
                        help="the HMAC key signatures are checked with (env NOTIFY_WEBHOOK_SECRET, default test-secret)")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args()
    return serve(WebhookServer(args.port, args.secret, args.verbose), args.port_file)


if __name__ == "__main__":
    sys.exit(main())
