"""Clients that send events as real ones do, recording every acknowledgement.

Each client thread owns a few users and sends `Track` batches (one `game_ended` with a random
score, the rest `level_completed`) to the instances in turn. A batch that fails with a
retryable status is resent unchanged (same event ids) to the next instance after a short
backoff, until it is acknowledged or the client's retry window closes, as a mobile SDK with a
persistent outbox would. An id is acknowledged when a reply lists it as accepted or duplicate
(a duplicate means an earlier copy was acknowledged)."""
import random
import threading
import time

RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "UNKNOWN"}


class EventLoad:
    def __init__(self, addresses, run_id, clients=4, batch=20, batches_per_second=10.0, deadline_s=2.0, retry_window_s=120.0):
        import grpc
        from tally.v1 import events_pb2_grpc
        self.run_id, self.batch, self.pause = run_id, batch, 1.0 / batches_per_second
        self.deadline_s, self.retry_window_s = deadline_s, retry_window_s
        self.channels = [grpc.insecure_channel(address) for address in addresses]
        self.stubs = [events_pb2_grpc.EventServiceStub(channel) for channel in self.channels]
        self.lock = threading.Lock()
        self.sent, self.acked, self.rejected = set(), set(), []
        self.max_acked_score = {}      # user -> highest acknowledged game_ended score
        self.statuses = {}             # failed attempts by status name
        self.abandoned = 0             # batches never acknowledged within the retry window
        self.fatal = []                # non-retryable errors (a bug, not a fault)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def acknowledged_count(self):
        with self.lock:
            return len(self.acked)

    def stop(self, timeout=None):
        """Stops sending new batches and waits until the pending ones are acknowledged or abandoned."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout if timeout is not None else self.retry_window_s + 30)
        for channel in self.channels:
            channel.close()

    def _client(self, number):
        from tally.v1 import events_pb2 as pb
        rng = random.Random(f"{self.run_id}-{number}")
        users = [f"{self.run_id}-u{number}-{k}" for k in range(8)]
        target = number
        sequence = 0
        while not self.stopping.is_set():
            sequence += 1
            user = rng.choice(users)
            now = int(time.time() * 1000)
            score = rng.randrange(1, 1_000_000)
            events = [pb.Event(id=f"{self.run_id}-c{number}-b{sequence}-{i}", user_id=user, client_time_ms=now,
                               type="game_ended" if i == 0 else "level_completed",
                               score=score if i == 0 else 0, level=i, game_mode="chaos")
                      for i in range(self.batch)]
            with self.lock:
                self.sent.update(event.id for event in events)
            target = self._send_until_acknowledged(pb.TrackRequest(events=events), user, score, target)
            time.sleep(self.pause)

    def _send_until_acknowledged(self, request, user, score, target):
        import grpc
        window_ends = time.monotonic() + self.retry_window_s
        backoff = 0.05
        while True:
            try:
                reply = self.stubs[target % len(self.stubs)].Track(request, timeout=self.deadline_s)
            except grpc.RpcError as error:
                name = error.code().name
                with self.lock:
                    self.statuses[name] = self.statuses.get(name, 0) + 1
                if name not in RETRYABLE:
                    with self.lock:
                        self.fatal.append(f"{name}: {error.details()}")
                    return target
                if time.monotonic() > window_ends:
                    with self.lock:
                        self.abandoned += 1
                    return target
                target += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            acknowledged = set(reply.accepted_ids) | set(reply.duplicate_ids)
            with self.lock:
                self.acked |= acknowledged
                self.rejected += [f"{r.id}: {r.reason}" for r in reply.rejected]
                if request.events[0].id in acknowledged:
                    self.max_acked_score[user] = max(self.max_acked_score.get(user, 0), score)
            return target
