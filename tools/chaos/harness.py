"""What every fault run needs: private PostgreSQL and Redis it may break, Tally instances it may
kill or pause, Python stubs generated from proto/, and a bounded wait.

Used by tools/chaos/chaos.py and tools/topups/fleet.py."""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def stubs(*files):
    """Generates Python stubs for proto/ files (all of tally.v1 when none are named)."""
    from grpc_tools import protoc
    import grpc_tools
    out = tempfile.mkdtemp(prefix="tally-chaos-stubs-")
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    if not files:
        files = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto" / "tally" / "v1").glob("*.proto")]
    rc = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *files])
    assert rc == 0, "grpc_tools.protoc failed"
    sys.path.insert(0, out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout, interval=0.2):
    """Polls `check` until it returns something true; returns that, or None after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result or None
        time.sleep(interval)


class Services:
    """PostgreSQL and Redis of this run only (tools/services.sh in a private state folder)."""

    def __init__(self, prefix="tally-chaos-"):
        self.state = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.state, 0o755)  # PostgreSQL runs as its own user under root
        self.env = dict(os.environ, TALLY_STATE_DIR=self.state)
        self.control("start")
        self.urls = dict(line.split("=", 1) for line in pathlib.Path(self.state, "services.env").read_text().splitlines())

    def control(self, command, which=None):
        """`tools/services.sh COMMAND [postgres|redis]`: start, stop, restart, kill."""
        subprocess.run(["bash", str(ROOT / "tools" / "services.sh"), command, *([which] if which else [])],
                       env=self.env, check=True, capture_output=True)

    def tally_env(self, admin_key="chaos-admin"):
        """The environment of a Tally instance on these services."""
        return dict(self.env, **{k: self.urls[k] for k in ("DATABASE_URL", "REDIS_URL")}, ADMIN_KEY=admin_key, LOG_LEVEL="warning")

    def migrate(self, binary):
        subprocess.run([binary, "migrate"], env=self.tally_env(), check=True, capture_output=True)

    def heal(self):
        """Undoes what a fault may have left behind: a stopped service, a Redis refusing writes."""
        self.control("start")
        self.redis("CONFIG", "SET", "maxmemory", "0")

    def psql(self, sql):
        return subprocess.run(["psql", self.urls["DATABASE_URL"], "-Atc", sql], check=True, capture_output=True, text=True).stdout

    def redis(self, *command):
        url = self.urls["REDIS_URL"]
        return subprocess.run(["redis-cli", "-u", url, *command], check=True, capture_output=True, text=True).stdout.strip()

    def stop(self):
        subprocess.run(["bash", str(ROOT / "tools" / "services.sh"), "stop"], env=self.env, capture_output=True)
        shutil.rmtree(self.state, ignore_errors=True)


class Instance:
    """One `tally serve` on a free loopback port; its log in a temporary file."""

    def __init__(self, binary, env, index):
        self.binary, self.env, self.index = binary, env, index
        self.port = free_port()
        self.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.log = open(tempfile.mktemp(prefix=f"tally-chaos-{self.index}-", suffix=".log"), "w")
        self.proc = subprocess.Popen([self.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"instance {self.index} exited with {self.proc.returncode}: {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"instance {self.index} did not start: {self.log.name}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
