"""Counts what came out of a fault run against what the clients were told.

acknowledged: ids a reply accepted (or called duplicates of an accepted copy);
stored: ids in Postgres' `events`; lost: acknowledged but not stored; duplicated: stored rows
beyond one per id; phantom: stored but never sent; boards off: users whose global board score
(as `Top` answers it, and as Postgres' leaderboard_scores holds it) is not the highest
`game_ended` score stored for them, or is below the highest acknowledged one."""
import dataclasses

from harness import wait_for

ADMIN = (("x-admin-key", "chaos-admin"),)


@dataclasses.dataclass
class EventCounts:
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    phantom: int = 0
    boards_off: int = 0
    dead_jobs: int = 0
    drained: bool = False

    @property
    def ok(self):
        return self.drained and self.acknowledged > 0 and not (self.lost or self.duplicated or self.phantom or self.boards_off or self.dead_jobs)

    def line(self):
        return (f"acknowledged {self.acknowledged}, stored {self.stored}, lost {self.lost}, duplicated {self.duplicated}, "
                f"phantom {self.phantom}, boards off {self.boards_off}, dead jobs {self.dead_jobs}"
                + ("" if self.drained else ", queue NOT drained"))


def queue_idle(admin_stub):
    """(idle, dead): the events queue has nothing waiting, running or delayed."""
    from tally.v1 import admin_pb2
    try:
        reply = admin_stub.QueueStats(admin_pb2.QueueStatsRequest(queue="events"), metadata=ADMIN, timeout=5)
    except Exception:
        return False, 0
    stats = reply.queues[0]
    return stats.waiting + stats.active + stats.delayed == 0, stats.dead


def stored_rows(services, run_id):
    rows = services.psql(f"SELECT event_id, count(*) FROM events WHERE event_id LIKE '{run_id}-%' GROUP BY event_id")
    return {line.split("|")[0]: int(line.split("|")[1]) for line in rows.splitlines() if line}


def board_scores(leaderboard_stub, run_id):
    """The global board's scores of this run's users, page by page, as `Top` answers."""
    from tally.v1 import leaderboard_pb2 as lb
    scores, cursor = {}, ""
    while True:
        reply = leaderboard_stub.Top(lb.TopRequest(board_id="global", limit=1000, cursor=cursor), timeout=10)
        scores.update({e.user_id: e.score for e in reply.entries if e.user_id.startswith(run_id)})
        if not reply.next_cursor:
            return scores
        cursor = reply.next_cursor


def boards_off(services, leaderboard_stub, run_id, max_acked):
    truth = dict((line.split("|")[0], int(line.split("|")[1])) for line in services.psql(
        f"SELECT user_id, max(score) FROM events WHERE event_id LIKE '{run_id}-%' AND type = 'game_ended' GROUP BY user_id").splitlines() if line)
    table = dict((line.split("|")[0], int(line.split("|")[1])) for line in services.psql(
        f"SELECT user_id, score FROM leaderboard_scores WHERE board = 'global' AND user_id LIKE '{run_id}-%'").splitlines() if line)
    try:
        served = board_scores(leaderboard_stub, run_id)
    except Exception:
        return len(truth) or 1
    users = set(truth) | set(table) | set(served) | set(max_acked)
    return sum(1 for u in users if not (truth.get(u) == table.get(u) == served.get(u) and served.get(u, 0) >= max_acked.get(u, 0)))


def audit_events(services, load, admin_stub, leaderboard_stub, run_id, timeout=120):
    counts = EventCounts(acknowledged=len(load.acked))
    counts.drained = bool(wait_for(lambda: queue_idle(admin_stub)[0] and load.acked <= set(stored_rows(services, run_id)), timeout))
    if not counts.drained:  # a loss would never drain: count once the queue itself is idle
        wait_for(lambda: queue_idle(admin_stub)[0], 30)
        counts.drained = queue_idle(admin_stub)[0]
    counts.dead_jobs = queue_idle(admin_stub)[1]
    rows = stored_rows(services, run_id)
    counts.stored = len(rows)
    counts.lost = len(load.acked - set(rows))
    counts.duplicated = sum(n - 1 for n in rows.values())
    counts.phantom = len(set(rows) - load.sent)
    # Scores reach the boards after the commit (and repairs after LEADERBOARD_REPAIR_AFTER_MS).
    off = wait_for(lambda: boards_off(services, leaderboard_stub, run_id, load.max_acked_score) == 0, 60)
    counts.boards_off = 0 if off else boards_off(services, leaderboard_stub, run_id, load.max_acked_score)
    return counts
