"""A mobile top-up provider simulator: a real HTTP server speaking HTTPTopupProvider's API.

    python3 tools/topups/provider_sim.py --port 0 --port-file /tmp/sim.port

It does NOT dedupe by reference: every POST that reaches "charge" counts one charge, so a test
can prove Tally never charges twice. Outcomes by the number's last four digits: 0000 declined,
0503 refused with 503 (not charged), 0500 charged then 500 (ambiguous); others charged.
Faults for the next charges via POST /control: {"mode": "slow", "delay_ms": 300},
{"mode": "fail_503", "count": 2}, {"mode": "timeout_after_charge", "delay_ms": 3000, "count": 1},
{"mode": "reset_after_charge", "count": 1}, {"mode": "reset_before_charge", "count": 1},
{"mode": "ok"}. GET /stats: charges per reference, totals, amounts; POST /reset clears.
"""
import argparse
import json
import pathlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Book:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.charges = {}      # reference -> count
            self.results = {}      # reference -> provider reference or ("declined", reason)
            self.amounts = {}      # currency -> minor units
            self.status_queries = 0
            self.mode, self.delay_ms, self.count = "ok", 0, 0
            self.next_id = 0

    def take_mode(self):
        with self.lock:
            mode, delay = self.mode, self.delay_ms
            if mode != "ok" and mode != "slow":
                self.count -= 1
                if self.count <= 0:
                    self.mode = "ok"
            return mode, delay

    def charge(self, body):
        with self.lock:
            reference = body["reference"]
            self.charges[reference] = self.charges.get(reference, 0) + 1
            self.amounts[body["currency"]] = self.amounts.get(body["currency"], 0) + int(body["amount_minor_units"])
            self.next_id += 1
            self.results[reference] = f"sim-{self.next_id}"
            return self.results[reference]


BOOK = Book()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reset_connection(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.connection.close()
        self.close_connection = True

    def body(self):
        length = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(length) or b"{}")

    def do_POST(self):
        body = self.body()
        if self.path == "/control":
            with BOOK.lock:
                BOOK.mode, BOOK.delay_ms, BOOK.count = body.get("mode", "ok"), body.get("delay_ms", 0), body.get("count", 1)
            return self.answer(200, {"ok": True})
        if self.path == "/reset":
            BOOK.reset()
            return self.answer(200, {"ok": True})
        if self.path != "/charges":
            return self.answer(404, {"error": "not found"})
        suffix = body.get("phone_number", "")[-4:]
        if suffix == "0000":
            with BOOK.lock:
                BOOK.results[body["reference"]] = ("declined", "number barred")
            return self.answer(200, {"status": "declined", "reason": "number barred"})
        if suffix == "0503":
            return self.answer(503, {"error": "busy"})
        mode, delay = BOOK.take_mode()
        if mode == "fail_503":
            return self.answer(503, {"error": "busy"})
        if mode == "reset_before_charge":
            return self.reset_connection()
        if mode == "slow":
            time.sleep(delay / 1000)
        reference = BOOK.charge(body)
        if mode == "timeout_after_charge":
            time.sleep(delay / 1000)
        if mode == "reset_after_charge":
            return self.reset_connection()
        if suffix == "0500":
            return self.answer(500, {"error": "internal"})
        self.answer(200, {"status": "succeeded", "provider_reference": reference})

    def do_GET(self):
        if self.path == "/stats":
            with BOOK.lock:
                return self.answer(200, {"charges": BOOK.charges, "total_charges": sum(BOOK.charges.values()),
                                         "amounts": BOOK.amounts, "status_queries": BOOK.status_queries})
        if self.path.startswith("/charges/"):
            reference = self.path.removeprefix("/charges/")
            with BOOK.lock:
                BOOK.status_queries += 1
                result = BOOK.results.get(reference)
            if result is None:
                return self.answer(404, {"error": "unknown reference"})
            if isinstance(result, tuple):
                return self.answer(200, {"status": "declined", "reason": result[1]})
            return self.answer(200, {"status": "succeeded", "provider_reference": result})
        self.answer(404, {"error": "not found"})


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that time out or reset are part of the game


class ProviderSimulator:
    """In-process use (pytest): start(), url, stats(), stop()."""

    def __init__(self, port=0):
        BOOK.reset()
        self.server = QuietServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    simulator = ProviderSimulator(args.port)
    if args.port_file:
        pathlib.Path(args.port_file).write_text(str(simulator.server.server_address[1]))
    print(f"provider simulator on {simulator.url}", flush=True)
    simulator.server.serve_forever()


if __name__ == "__main__":
    main()
