"""The scenarios of the other domains: top-ups (provider and an instance killed mid-call,
charges counted), quiz (the notification worker killed mid-delivery) and presence (an instance
killed with users online). Each returns (ok, line) like the events scenarios."""
import sys
import threading
import time
import uuid

from harness import ROOT, Instance, wait_for

sys.path.insert(0, str(ROOT / "tools" / "topups"))
sys.path.insert(0, str(ROOT / "tools" / "quiz"))


def topups_faults(services, binary, topups=400):
    """tools/topups/fleet.py on the run's services: the shared limit, then `topups` keys sent
    1-3 times through an instance SIGKILL and a provider restart; every charge counted."""
    import fleet
    results = fleet.run_fleet(services, binary, topups, instance_count=3, workers=24)
    failed = [line for ok, line in results if not ok]
    summary = "; ".join(line for _, line in results if line.split(":")[0] in ("stored", "charges"))
    return not failed, summary + "".join(f"; FAILED {line}" for line in failed)


def quiz_notifications_killed(services, binary, winners=300):
    """Rewards for `winners` users sent through the webhook sink; the only instance is SIGKILLed
    once a fifth are delivered and restarted: every message arrives (at least once, its id
    lets the receiver drop a repeat), none is invented."""
    import grpc
    from tally.v1 import quiz_pb2 as pb, quiz_pb2_grpc
    from webhook_sim import WebhookSimulator
    simulator = WebhookSimulator(secret="chaos-webhook-secret").start()
    instance = None
    try:
        env = dict(services.tally_env(), NOTIFY_WEBHOOK_URL=simulator.url, NOTIFY_WEBHOOK_SECRET="chaos-webhook-secret",
                   NOTIFY_RATE_GLOBAL_PER_SEC="100", QUEUE_LEASE_MS="1000", NOTIFY_SWEEP_AFTER_MS="2000")
        instance = Instance(binary, env, 0)
        quiz = f"chaos-{uuid.uuid4().hex[:8]}"
        with grpc.insecure_channel(instance.address) as channel:
            stub = quiz_pb2_grpc.QuizServiceStub(channel)
            answers = [pb.QuizAnswer(user_id=f"{quiz}-w{i:04}", question_id="q1", answer="a", correct=True, points=10_000 - i,
                                     response_time_ms=10) for i in range(winners)]
            saved = stub.SubmitAnswers(pb.SubmitAnswersRequest(quiz_id=quiz, answers=answers), timeout=30).saved
            tier = pb.RewardTier(from_rank=1, to_rank=winners, reward="coins")
            rewards = stub.DistributeRewards(pb.DistributeRewardsRequest(quiz_id=quiz, distribution_id="chaos", tiers=[tier]),
                                             metadata=(("x-admin-key", "chaos-admin"),), timeout=30).rewards
        expected = {f"reward:{quiz}:chaos:{r.user_id}" for r in rewards}
        wait_for(lambda: len(simulator.log.stats()["delivered"]) >= winners // 5, 60)
        delivered_before_kill = len(simulator.log.stats()["delivered"])
        instance.kill()
        instance.start()
        wait_for(lambda: set(simulator.log.stats()["delivered"]) >= expected, 120)
        stats = simulator.log.stats()
        delivered = stats["delivered"]
        stored = int(services.psql(f"SELECT count(*) FROM quiz_answers WHERE quiz_id = '{quiz}'"))
        lost = len(expected - set(delivered))
        phantom = len(set(delivered) - expected)
        repeated = sum(n - 1 for n in delivered.values())
        ok = saved == winners == stored and len(rewards) == winners and lost == 0 and phantom == 0 and stats["invalid_signatures"] == 0
        return ok, (f"answers acknowledged {saved}, stored {stored}; rewards {len(rewards)}, messages delivered {len(delivered)}, "
                    f"lost {lost}, phantom {phantom}, delivered again after the kill {repeated} (at least once); "
                    f"SIGKILL after {delivered_before_kill} delivered")
    finally:
        if instance is not None:
            instance.stop()
        simulator.stop()


class PresenceDevice:
    """One user's Connect stream with heartbeats, or a watcher collecting the latest status per user."""

    def __init__(self, address, user, timeout_ms):
        import queue
        import grpc
        from tally.v1 import presence_pb2 as pb, presence_pb2_grpc
        self.pb, self.outgoing, self.latest = pb, queue.Queue(), {}
        self.lock, self.closed = threading.Lock(), threading.Event()
        self.channel = grpc.insecure_channel(address)
        self.call = presence_pb2_grpc.PresenceServiceStub(self.channel).Connect(iter(self.outgoing.get, None))
        self.send(hello=pb.Hello(user_id=user, device="chaos"))
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._beat, args=(timeout_ms / 3000,), daemon=True).start()

    def send(self, **kind):
        self.outgoing.put(self.pb.PresenceClientMessage(**kind))

    def _read(self):
        try:
            for message in self.call:
                with self.lock:
                    self.latest.update({c.user_id: c.status for c in message.changes})
        except Exception:
            pass
        self.closed.set()

    def _beat(self, every):
        while not self.closed.wait(every):
            self.send(heartbeat=self.pb.Heartbeat(client_time_ms=int(time.time() * 1000)))

    def count(self, users, status):
        with self.lock:
            return sum(1 for u in users if self.latest.get(u) == status)

    def close(self):
        self.outgoing.put(None)
        self.call.cancel()
        self.channel.close()


def presence_instance_killed(services, binary, users=100):
    """`users` devices online through instance 0, watched from instance 1; instance 0 SIGKILLed:
    every user must turn OFFLINE for the watcher and for a new subscriber's snapshot."""
    timeout_ms, interval_ms = 1500, 300
    env = dict(services.tally_env(), PRESENCE_TIMEOUT_MS=str(timeout_ms), PRESENCE_INTERVAL_MS=str(interval_ms))
    fleet, devices = [], []
    try:
        fleet = [Instance(binary, env, n) for n in range(2)]
        run = f"chaos-{uuid.uuid4().hex[:8]}"
        names = [f"{run}-p{i:03}" for i in range(users)]
        watcher = PresenceDevice(fleet[1].address, f"{run}-watcher", timeout_ms)
        devices.append(watcher)
        watcher.send(subscribe=watcher.pb.Subscribe(user_ids=names))
        devices += [PresenceDevice(fleet[0].address, name, timeout_ms) for name in names]
        online = wait_for(lambda: watcher.count(names, watcher.pb.PRESENCE_STATUS_ONLINE) == users, 60)
        fleet[0].kill()
        killed = time.monotonic()
        wait_for(lambda: watcher.count(names, watcher.pb.PRESENCE_STATUS_OFFLINE) == users, 30)
        took = time.monotonic() - killed
        stuck = users - watcher.count(names, watcher.pb.PRESENCE_STATUS_OFFLINE)
        fresh = PresenceDevice(fleet[1].address, f"{run}-late", timeout_ms)
        devices.append(fresh)
        fresh.send(subscribe=fresh.pb.Subscribe(user_ids=names))
        wait_for(lambda: len(fresh.latest) >= users, 20)
        stuck_in_snapshot = users - fresh.count(names, fresh.pb.PRESENCE_STATUS_OFFLINE)
        ok = bool(online) and stuck == 0 and stuck_in_snapshot == 0
        return ok, (f"{users} users online through the killed instance ({'all' if online else 'NOT all'} seen ONLINE); "
                    f"stuck online for the watcher {stuck} ({'all OFFLINE' if not stuck else 'gave up'} {took:.1f} s after SIGKILL, "
                    f"timeout {timeout_ms / 1000:.1f} s), "
                    f"in a new subscriber's snapshot {stuck_in_snapshot}")
    finally:
        for device in devices:
            device.close()
        for instance in fleet:
            instance.stop()


SCENARIOS = {
    "topups/provider-and-instance-killed": topups_faults,
    "quiz/notification-worker-killed": quiz_notifications_killed,
    "presence/instance-killed": presence_instance_killed,
}
