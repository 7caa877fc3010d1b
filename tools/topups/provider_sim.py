"""A mobile-top-up provider speaking the HTTP API that `HTTPTopupProvider` calls, for tests.

It counts every charge per reference and deliberately does NOT deduplicate by reference or
Idempotency-Key: a second POST that reaches the charging step is a second charge, so a test
can prove from `GET /stats` that Tally never charged a customer twice.

Provider API (what partners' providers expose):
  POST /charges             {"reference", "phone_number", "amount_minor_units", "currency", "carrier"}
                            with header Idempotency-Key equal to the reference
                            -> 200 {"status": "succeeded", "provider_reference": "sim-<n>"}
                            |  200 {"status": "declined", "reason": "..."}
  GET  /charges/<reference> -> 200 succeeded / declined as above, 404 when never charged

Outcomes by the phone number's last four digits, so scripts running several Tally instances
need no control calls: 0000 declined ("number barred"), 0503 answers 503 without charging,
0500 charges and then answers 500; any other number is charged.

Test controls (not part of the provider API):
  POST /control {"mode": "ok"}                                     back to normal
                {"mode": "slow", "delay_ms": 300}                  wait, then charge and answer
                {"mode": "fail_503", "count": 2}                   503 without charging
                {"mode": "timeout_after_charge", "delay_ms": 3000, "count": 1}
                                                                   charge, answer only after the delay
                {"mode": "reset_after_charge", "count": 1}         charge, then reset the connection
                {"mode": "reset_before_charge", "count": 1}        reset the connection, no charge
                `count` is how many charge requests the mode applies to before "ok" again;
                without it the mode lasts until the next control call.
  GET  /stats   {"charges": {reference: n}, "total_charges": n, "amounts": {currency: minor units},
                 "status_queries": n, "charge_requests": n}
  POST /reset   forget every charge and counter, back to "ok"

Run standalone: python3 provider_sim.py --port 0 --port-file PATH (the bound port is written
to PATH once listening; it binds 127.0.0.1 only). Import: ProviderSimulator().start().
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

MODES = {"ok", "slow", "fail_503", "timeout_after_charge", "reset_after_charge", "reset_before_charge"}
MAX_BODY = 64 * 1024


class Ledger:
    """Every charge, decline and counter of one simulator, behind one lock (handlers run on
    a thread per connection)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self._charges = {}       # reference -> number of charges
            self._references = {}    # reference -> provider reference of its first charge
            self._declines = {}      # reference -> reason
            self._amounts = {}       # currency -> minor units charged
            self._charge_requests = 0
            self._status_queries = 0
            self._next_id = 1
            self._mode = {"mode": "ok", "delay_ms": 0, "count": None}

    def set_mode(self, mode: str, delay_ms: int, count):
        with self._lock:
            self._mode = {"mode": mode, "delay_ms": delay_ms, "count": count}

    def take_mode(self):
        """The mode this charge request runs under; counts it against the mode's `count`."""
        with self._lock:
            self._charge_requests += 1
            current = dict(self._mode)
            if current["count"] is not None:
                self._mode["count"] -= 1
                if self._mode["count"] <= 0:
                    self._mode = {"mode": "ok", "delay_ms": 0, "count": None}
            return current["mode"], current["delay_ms"]

    def charge(self, reference: str, currency: str, amount: int) -> str:
        with self._lock:
            self._charges[reference] = self._charges.get(reference, 0) + 1
            self._amounts[currency] = self._amounts.get(currency, 0) + amount
            provider_reference = f"sim-{self._next_id}"
            self._next_id += 1
            self._references.setdefault(reference, provider_reference)
            return provider_reference

    def decline(self, reference: str, reason: str):
        with self._lock:
            self._declines.setdefault(reference, reason)

    def status(self, reference: str):
        """(http status, body) of GET /charges/<reference>."""
        with self._lock:
            self._status_queries += 1
            if reference in self._references:
                return 200, {"status": "succeeded", "provider_reference": self._references[reference]}
            if reference in self._declines:
                return 200, {"status": "declined", "reason": self._declines[reference]}
            return 404, {"error": "no charge with this reference"}

    def stats(self) -> dict:
        with self._lock:
            return {
                "charges": dict(self._charges),
                "total_charges": sum(self._charges.values()),
                "amounts": dict(self._amounts),
                "status_queries": self._status_queries,
                "charge_requests": self._charge_requests,
            }


class ProviderHandler(BaseHTTPRequestHandler):
    # Keep-alive, as partners' servers do, so the adapter's pooled connections are exercised.
    protocol_version = "HTTP/1.1"
    server_version = "ProviderSim/1"

    @property
    def ledger(self) -> Ledger:
        return self.server.ledger

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("provider_sim: " + (format % args) + "\n")

    # -- routing --

    def do_GET(self):
        if self.path == "/stats":
            self.reply(200, self.ledger.stats())
        elif self.path.startswith("/charges/") and len(self.path) > len("/charges/"):
            self.reply(*self.ledger.status(unquote(self.path[len("/charges/"):])))
        else:
            self.reply(404, {"error": f"no route GET {self.path}"})

    def do_POST(self):
        body = self.read_json()
        if body is None:
            return
        if self.path == "/charges":
            self.charge(body)
        elif self.path == "/control":
            self.control(body)
        elif self.path == "/reset":
            self.ledger.reset()
            self.reply(200, {"ok": True})
        else:
            self.reply(404, {"error": f"no route POST {self.path}"})

    # -- provider API --

    def charge(self, body: dict):
        try:
            reference = body["reference"]
            phone = body["phone_number"]
            amount = int(body["amount_minor_units"])
            currency = body["currency"]
            if not isinstance(reference, str) or not reference or not isinstance(phone, str):
                raise ValueError("reference and phone_number must be non-empty strings")
        except (KeyError, TypeError, ValueError) as error:
            self.reply(400, {"status": "declined", "reason": f"invalid charge: {error}"})
            return
        # Partners require the idempotency key; a client that leaves it out is refused, which
        # is how the tests see that the adapter sends it.
        if self.headers.get("Idempotency-Key") != reference:
            self.reply(400, {"status": "declined", "reason": "Idempotency-Key must equal the reference"})
            return

        mode, delay_ms = self.ledger.take_mode()
        if mode == "fail_503":
            self.reply(503, {"error": "temporarily unavailable"})
            return
        if mode == "reset_before_charge":
            self.reset_connection()
            return
        if mode == "slow":
            time.sleep(delay_ms / 1000)

        status, reply = self.process(reference, phone, currency, amount)
        if mode == "reset_after_charge":
            self.reset_connection()
            return
        if mode == "timeout_after_charge":
            time.sleep(delay_ms / 1000)
        self.reply(status, reply)

    def process(self, reference: str, phone: str, currency: str, amount: int):
        """The provider's business answer, by the phone number's suffix: (status, body)."""
        if phone.endswith("0000"):
            self.ledger.decline(reference, "number barred")
            return 200, {"status": "declined", "reason": "number barred"}
        if phone.endswith("0503"):
            return 503, {"error": "temporarily unavailable"}
        provider_reference = self.ledger.charge(reference, currency, amount)
        if phone.endswith("0500"):
            return 500, {"error": "internal error after charging"}
        return 200, {"status": "succeeded", "provider_reference": provider_reference}

    # -- test controls --

    def control(self, body: dict):
        mode = body.get("mode")
        if mode not in MODES:
            self.reply(400, {"error": f"mode must be one of {sorted(MODES)}"})
            return
        count = body.get("count")
        self.ledger.set_mode(mode, int(body.get("delay_ms", 0)), None if count is None else int(count))
        self.reply(200, {"ok": True})

    # -- plumbing --

    def read_json(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            self.reply(411, {"error": "a Content-Length of at most 64 KiB is required"})
            return None
        raw = self.rfile.read(int(length)) if int(length) else b"{}"
        try:
            body = json.loads(raw)
        except ValueError:
            self.reply(400, {"status": "declined", "reason": "body is not JSON"})
            return None
        if not isinstance(body, dict):
            self.reply(400, {"status": "declined", "reason": "body is not a JSON object"})
            return None
        return body

    def reply(self, status: int, body: dict):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout) before this answer; nothing left to tell it.
            self.close_connection = True

    def reset_connection(self):
        """Drops the connection with a TCP RST and no response, as a crashing provider does."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The socket closes only once its buffered reader lets go of it.
        self.rfile.close()
        self.connection.close()


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True
    # Handlers that sleep (slow, timeout modes) must not hold up shutdown.
    block_on_close = False

    def __init__(self, port: int, verbose: bool = False, ledger: "Ledger | None" = None):
        super().__init__(("127.0.0.1", port), ProviderHandler)
        self.ledger = ledger or Ledger()
        self.verbose = verbose


class BackgroundServer:
    """An HTTP server of this process served from a background thread, for pytest (shared with
    tools/quiz/webhook_sim.py)."""

    def __init__(self, server, name: str):
        self._server = server
        self._name = name
        self._thread = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ProviderSimulator(BackgroundServer):
    """The simulator in a background thread of this process, for pytest."""

    def __init__(self, port: int = 0, verbose: bool = False, ledger: "Ledger | None" = None):
        """`ledger`: another simulator's, to restart on its port keeping what it counted."""
        super().__init__(ProviderServer(port, verbose, ledger), "provider-sim")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ledger(self) -> Ledger:
        return self._server.ledger


def serve(server, port_file: "str | None") -> int:
    """Runs `server` until SIGTERM/SIGINT, writing its bound port to `port_file` once listening
    (the command line of the simulators)."""
    # A launcher may hand down a mask blocking SIGTERM/SIGINT (Swift Foundation's Process does);
    # unblocked, they stop the simulator as they would any command.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    if port_file:
        # Written whole under a temporary name, then renamed, so a reader polling for the file
        # never sees half a number.
        temporary = port_file + ".tmp"
        with open(temporary, "w") as f:
            f.write(f"{server.server_address[1]}\n")
        os.replace(temporary, port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Mobile-top-up provider simulator for Tally's tests.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args()
    return serve(ProviderServer(args.port, args.verbose), args.port_file)


if __name__ == "__main__":
    sys.exit(main())
