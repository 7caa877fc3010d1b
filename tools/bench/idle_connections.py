#!/usr/bin/env python3
"""Memory with many idle HTTP/2 connections: opens N connections to a running server, each
sending the HTTP/2 preface and an empty SETTINGS frame (then nothing), and prints the
server's RSS before and after (from /proc/PID/status). Loopback only; bounded by N.

    tools/bench/idle_connections.py --pid PID --port PORT [--connections 1000]
"""
import argparse
import resource
import socket
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        raise SystemExit("loopback only")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 100)), hard))

    before = rss_kib(args.pid)
    sockets = []
    for _ in range(args.connections):
        s = socket.create_connection((args.host, args.port), timeout=5)
        s.sendall(PREFACE)
        sockets.append(s)
    time.sleep(1.0)
    # Drain what the server sent (SETTINGS, SETTINGS ACK, WINDOW_UPDATE) so nothing is stuck.
    for s in sockets:
        s.settimeout(0.2)
        try:
            s.recv(65536)
        except OSError:
            pass
    time.sleep(0.5)
    after = rss_kib(args.pid)
    alive = 0
    for s in sockets:
        s.setblocking(False)
        try:
            alive += 1 if s.recv(1) != b"" else 0
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    print(f"idle connections: {args.connections} opened, {alive} still open")
    print(f"server RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB with them "
          f"({(after - before) / args.connections:.1f} KiB per connection)")
    for s in sockets:
        s.close()


if __name__ == "__main__":
    main()
