"""Quizzes over the wire with grpcio: answers saved all or nothing (batches and streams), the
replace rules, the quiz board's order and pages, and idempotent reward distributions."""
import concurrent.futures
import threading
import uuid

import grpc
import pytest

from conftest import ADMIN, eventually, start_tally, stop_tally, PRODUCT_ENV


@pytest.fixture
def quiz(stubs, channel):
    from tally.v1 import leaderboard_pb2, leaderboard_pb2_grpc, quiz_pb2, quiz_pb2_grpc
    return Quiz(quiz_pb2, quiz_pb2_grpc.QuizServiceStub(channel), leaderboard_pb2, leaderboard_pb2_grpc.LeaderboardServiceStub(channel))


class Quiz:
    """A fresh quiz id per test, and short ways to call QuizService on it."""

    def __init__(self, pb, stub, lb_pb, boards):
        self.pb, self.stub, self.lb_pb, self.boards = pb, stub, lb_pb, boards
        self.id = f"q-{uuid.uuid4().hex[:12]}"

    def answer(self, user, question, points=10, correct=True, ms=1000, answer="a"):
        return self.pb.QuizAnswer(user_id=user, question_id=question, answer=answer, correct=correct, points=points,
                                  response_time_ms=ms, answered_at_ms=0)

    def submit(self, answers, quiz_id=None):
        return self.stub.SubmitAnswers(self.pb.SubmitAnswersRequest(quiz_id=quiz_id or self.id, answers=answers), timeout=30)

    def board(self, limit=100, cursor=""):
        return self.stub.Leaderboard(self.pb.QuizLeaderboardRequest(quiz_id=self.id, limit=limit, cursor=cursor), timeout=10)

    def standings(self):
        """(user, points, total time) best first."""
        return [(e.user_id, e.score, e.total_time_ms) for e in self.board().entries]

    def distribute(self, distribution_id, *tiers, metadata=ADMIN):
        request = self.pb.DistributeRewardsRequest(
            quiz_id=self.id, distribution_id=distribution_id,
            tiers=[self.pb.RewardTier(from_rank=f, to_rank=t, reward=r, repeatable=rep) for f, t, r, rep in tiers])
        return self.stub.DistributeRewards(request, metadata=metadata, timeout=30)


def refused(call, code):
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code, info.value.details()
    return info.value.details()


def test_a_batch_is_saved_and_the_board_orders_points_then_lower_time(quiz):
    answers = [
        quiz.answer("ann", "q1", points=10, ms=900), quiz.answer("ann", "q2", points=5, ms=800),
        quiz.answer("bob", "q1", points=10, ms=500), quiz.answer("bob", "q2", points=5, ms=700),
        quiz.answer("cid", "q1", points=20, ms=5000), quiz.answer("dan", "q1", points=0, correct=False, ms=100),
    ]
    saved = quiz.submit(answers)
    assert (saved.saved, saved.users_updated) == (6, 4)
    # cid leads on points; ann and bob tie on 15 and bob's 1,200 ms beat ann's 1,700 ms.
    assert quiz.standings() == [("cid", 20, 5000), ("bob", 15, 1200), ("ann", 15, 1700), ("dan", 0, 100)]
    assert quiz.board().total == 4


def test_equal_points_and_time_rank_by_user_id_as_every_board(quiz):
    quiz.submit([quiz.answer(user, "q1", points=7, ms=300) for user in ["u-a", "u-c", "u-b"]])
    # The engine's order for entries equal in score and time: the user id's bytes, descending.
    assert [user for user, _, _ in quiz.standings()] == ["u-c", "u-b", "u-a"]


def test_a_later_answer_replaces_the_earlier_within_a_batch(quiz):
    saved = quiz.submit([quiz.answer("ann", "q1", points=10, ms=100), quiz.answer("ann", "q1", points=3, correct=False, ms=900)])
    assert (saved.saved, saved.users_updated) == (1, 1)
    assert quiz.standings() == [("ann", 3, 900)]


def test_a_later_batch_replaces_answers_and_the_score_can_go_down(quiz):
    quiz.submit([quiz.answer("ann", "q1", points=10, ms=100), quiz.answer("ann", "q2", points=10, ms=100),
                 quiz.answer("bob", "q1", points=15, ms=100)])
    assert quiz.standings() == [("ann", 20, 200), ("bob", 15, 100)]
    saved = quiz.submit([quiz.answer("ann", "q2", points=0, correct=False, ms=400)])
    assert (saved.saved, saved.users_updated) == (1, 1)
    assert quiz.standings() == [("bob", 15, 100), ("ann", 10, 500)]
    rank = quiz.boards.Rank(quiz.lb_pb.RankRequest(board_id=f"quiz:{quiz.id}", user_id="ann"), timeout=10)
    assert (rank.entry.rank, rank.entry.score, rank.entry.total_time_ms, rank.entry.achieved_at_ms) == (2, 10, 500, 0)
    # The same answer again changes nothing.
    assert quiz.submit([quiz.answer("ann", "q2", points=0, correct=False, ms=400)]).users_updated == 0


def test_one_bad_answer_saves_nothing_and_names_the_rows(quiz):
    answers = [quiz.answer(f"user-{i}", "q1") for i in range(10)]
    answers[3] = quiz.answer("", "q1")
    answers[7] = quiz.answer("user-7", "q1", ms=-5)
    details = refused(lambda: quiz.submit(answers), grpc.StatusCode.INVALID_ARGUMENT)
    assert "answers[3].user_id" in details and "answers[7].response_time_ms" in details and "nothing saved" in details
    assert quiz.board().total == 0


@pytest.mark.parametrize("request_fields, fragment", [
    ({"quiz_id": ""}, "quiz_id"),
    ({"quiz_id": "has space"}, "quiz_id"),
])
def test_a_bad_quiz_id_is_refused(quiz, request_fields, fragment):
    request = quiz.pb.SubmitAnswersRequest(answers=[quiz.answer("ann", "q1")], **request_fields)
    assert fragment in refused(lambda: quiz.stub.SubmitAnswers(request, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)


def test_a_batch_over_quiz_batch_max_is_refused(quiz):
    answers = [quiz.answer(f"u{i % 500}", f"q{i}") for i in range(10_001)]
    details = refused(lambda: quiz.submit(answers), grpc.StatusCode.INVALID_ARGUMENT)
    assert "QUIZ_BATCH_MAX" in details
    assert quiz.board().total == 0


def test_ten_thousand_answers_in_one_batch(quiz):
    answers = [quiz.answer(f"u{i % 1000}", f"q{i // 1000}", points=i % 7, ms=100 + i % 13) for i in range(10_000)]
    saved = quiz.submit(answers)
    assert (saved.saved, saved.users_updated) == (10_000, 1000)
    board = quiz.board(limit=1000)
    assert board.total == 1000
    expected = {}
    for a in answers:
        points, ms = expected.get(a.user_id, (0, 0))
        expected[a.user_id] = (points + a.points, ms + a.response_time_ms)
    assert {e.user_id: (e.score, e.total_time_ms) for e in board.entries} == expected
    keys = [(-e.score, e.total_time_ms) for e in board.entries]
    assert keys == sorted(keys)


def test_the_board_pages_with_a_cursor(quiz):
    quiz.submit([quiz.answer(f"user-{i:03}", "q1", points=i, ms=100) for i in range(25)])
    seen, cursor = [], ""
    while True:
        page = quiz.board(limit=10, cursor=cursor)
        seen += [e.user_id for e in page.entries]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == [f"user-{i:03}" for i in reversed(range(25))]


def chunks_of(quiz, answers, size, quiz_id=None):
    for start in range(0, len(answers), size):
        yield quiz.pb.AnswerChunk(quiz_id=quiz_id or quiz.id, answers=answers[start:start + size])


def test_a_stream_saves_its_chunks_when_the_client_half_closes(quiz):
    answers = [quiz.answer(f"u{i % 50}", f"q{i // 50}", points=1, ms=10) for i in range(1000)]
    saved = quiz.stub.StreamAnswers(chunks_of(quiz, answers, 100), timeout=30)
    assert (saved.saved, saved.users_updated) == (1000, 50)
    assert quiz.board().total == 50 and quiz.standings()[0][1:] == (20, 200)


def test_a_stream_with_chunks_of_another_quiz_is_refused_and_saves_nothing(quiz):
    def chunks():
        yield quiz.pb.AnswerChunk(quiz_id=quiz.id, answers=[quiz.answer("ann", "q1")])
        yield quiz.pb.AnswerChunk(quiz_id=quiz.id + "-other", answers=[quiz.answer("bob", "q1")])
    details = refused(lambda: quiz.stub.StreamAnswers(chunks(), timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
    assert "one quiz" in details
    assert quiz.board().total == 0


def test_a_stream_with_a_bad_answer_names_its_position_in_the_stream(quiz):
    answers = [quiz.answer(f"u{i}", "q1") for i in range(30)]
    answers[25] = quiz.answer("u25", "")
    details = refused(lambda: quiz.stub.StreamAnswers(chunks_of(quiz, answers, 10), timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
    assert "answers[25].question_id" in details
    assert quiz.board().total == 0


def test_a_stream_past_quiz_stream_max_answers_is_resource_exhausted(own_tally, stubs):
    from tally.v1 import quiz_pb2, quiz_pb2_grpc
    server = own_tally("--quiz-stream-max-answers", "50")
    q = Quiz(quiz_pb2, quiz_pb2_grpc.QuizServiceStub(server.channel), None, None)
    answers = [q.answer(f"u{i}", "q1") for i in range(60)]
    details = refused(lambda: q.stub.StreamAnswers(chunks_of(q, answers, 20), timeout=10), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "QUIZ_STREAM_MAX_ANSWERS" in details
    assert q.board().total == 0


def test_a_cancelled_stream_saves_nothing(own_tally, stubs):
    from tally.v1 import quiz_pb2, quiz_pb2_grpc
    server = own_tally()
    q = Quiz(quiz_pb2, quiz_pb2_grpc.QuizServiceStub(server.channel), None, None)
    sent = threading.Event()
    release = threading.Event()

    def chunks():
        yield q.pb.AnswerChunk(quiz_id=q.id, answers=[q.answer("ann", "q1")])
        sent.set()
        release.wait(10)  # never half-closes before the cancel

    future = q.stub.StreamAnswers.future(chunks(), timeout=30)
    assert sent.wait(10)
    cancelled_before = server.calls().get("cancelled", 0)
    future.cancel()
    release.set()
    # The server has seen the cancel once it counts the call as cancelled: only then is the
    # absence of the answer a fact rather than a race.
    assert eventually(lambda: server.calls().get("cancelled", 0) > cancelled_before, timeout=10)
    assert q.board().total == 0


def test_distribute_rewards_by_tier_once_and_replays_with_the_same_id(quiz):
    quiz.submit([quiz.answer(f"user-{i}", "q1", points=100 - i, ms=100) for i in range(10)])
    first = quiz.distribute("round-1", (1, 1, "gold", False), (2, 3, "silver", False))
    assert [(r.user_id, r.rank, r.reward) for r in first.rewards] == [("user-0", 1, "gold"), ("user-1", 2, "silver"), ("user-2", 3, "silver")]
    assert not first.replayed
    again = quiz.distribute("round-1", (2, 3, "silver", False), (1, 1, "gold", False))  # same tiers, other order
    assert again.replayed and list(again.rewards) == list(first.rewards)
    details = refused(lambda: quiz.distribute("round-1", (1, 1, "platinum", False)), grpc.StatusCode.FAILED_PRECONDITION)
    assert "round-1" in details


def test_a_user_is_rewarded_once_per_quiz_unless_the_tier_is_repeatable(quiz):
    quiz.submit([quiz.answer(f"user-{i}", "q1", points=100 - i, ms=100) for i in range(5)])
    quiz.distribute("a", (1, 2, "gold", False))
    second = quiz.distribute("b", (1, 3, "bonus", False))
    # user-0 and user-1 already hold a reward of this quiz: only user-2 gets this one.
    assert [(r.user_id, r.rank) for r in second.rewards] == [("user-2", 3)]
    repeat = quiz.distribute("c", (1, 2, "badge", True))
    assert [r.user_id for r in repeat.rewards] == ["user-0", "user-1"]


def test_a_tie_on_a_tier_boundary_goes_by_the_board_order(quiz):
    quiz.submit([quiz.answer("slow", "q1", points=50, ms=900), quiz.answer("fast", "q1", points=50, ms=100),
                 quiz.answer("top", "q1", points=80, ms=999)])
    rewards = quiz.distribute("tie", (1, 2, "prize", False)).rewards
    assert [r.user_id for r in rewards] == ["top", "fast"]
    assert [e.user_id for e in quiz.board().entries][:2] == ["top", "fast"]


@pytest.mark.parametrize("tiers, fragment", [
    ([], "tiers"),
    ([(0, 1, "x", False)], "from_rank"),
    ([(3, 2, "x", False)], "from_rank"),
    ([(1, 5, "x", False), (5, 6, "y", False)], "overlap"),
    ([(1, 1, "", False)], "reward"),
    ([(1, 20_000, "x", False)], "QUIZ_REWARDS_MAX"),
])
def test_bad_tiers_are_refused(quiz, tiers, fragment):
    assert fragment in refused(lambda: quiz.distribute("bad", *tiers), grpc.StatusCode.INVALID_ARGUMENT)


def test_distribute_rewards_needs_the_admin_key_and_an_id(quiz):
    refused(lambda: quiz.distribute("x", (1, 1, "gold", False), metadata=()), grpc.StatusCode.UNAUTHENTICATED)
    assert "distribution_id" in refused(lambda: quiz.distribute("", (1, 1, "gold", False)), grpc.StatusCode.INVALID_ARGUMENT)


def test_two_instances_distributing_at_once_never_reward_a_user_twice(stubs, tally):
    """Two distributions of one quiz with different ids and overlapping tiers, at once, on two
    instances: every user holds at most one reward, and together they hand out each rank once."""
    from tally.v1 import quiz_pb2, quiz_pb2_grpc
    second, port, log = start_tally(env=PRODUCT_ENV)
    try:
        with grpc.insecure_channel(tally) as one, grpc.insecure_channel(f"127.0.0.1:{port}") as two:
            a = Quiz(quiz_pb2, quiz_pb2_grpc.QuizServiceStub(one), None, None)
            b = Quiz(quiz_pb2, quiz_pb2_grpc.QuizServiceStub(two), None, None)
            b.id = a.id
            a.submit([a.answer(f"user-{i:03}", "q1", points=1000 - i, ms=10) for i in range(200)])
            for round_ in range(5):
                with concurrent.futures.ThreadPoolExecutor(2) as pool:
                    results = list(pool.map(lambda q: q[0].distribute(f"r{round_}-{q[1]}", (1, 100, "prize", False)),
                                            [(a, "a"), (b, "b")]))
                rewarded = [r.user_id for result in results for r in result.rewards]
                assert len(rewarded) == len(set(rewarded)), "a user was rewarded twice"
            everyone = [r.user_id for round_ in range(5) for q, side in [(a, "a"), (b, "b")]
                        for r in q.distribute(f"r{round_}-{side}", (1, 100, "prize", False)).rewards]
            assert sorted(everyone) == [f"user-{i:03}" for i in range(100)]
    finally:
        assert stop_tally(second) == 0, open(log).read()


def test_rewards_notify_every_winner_through_the_webhook_within_the_limits(stubs):
    """A 300-winner distribution on an instance with the webhook sink (a Redis of the test's
    own, so its workers are the only ones): every winner's message arrives signed, the instance
    is killed mid-run and restarted and nothing is lost, a throttled destination is paused, and
    arrivals never beat the global or per-destination limit."""
    import json
    import signal
    import sys
    import time
    from conftest import ROOT
    from test_durability import private_services
    from tally.v1 import quiz_pb2, quiz_pb2_grpc
    sys.path.insert(0, str(ROOT / "tools" / "quiz"))
    from webhook_sim import WebhookSimulator
    secret = "s3cret-for-the-webhook"
    rate = 40
    simulator = WebhookSimulator(secret=secret).start()
    base = f"http://127.0.0.1:{simulator.port}"

    def http(path, body=None):
        import urllib.request
        request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                         method="POST" if body is not None else "GET")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    try:
        with private_services("redis") as (urls, _):
            env = dict(PRODUCT_ENV, REDIS_URL=urls["REDIS_URL"], NOTIFY_WEBHOOK_URL=simulator.url, NOTIFY_WEBHOOK_SECRET=secret,
                       NOTIFY_RATE_GLOBAL_PER_SEC=str(rate), NOTIFY_RATE_PER_DESTINATION_PER_SEC="1", QUEUE_LEASE_MS="1000",
                       NOTIFY_SWEEP_AFTER_MS="2000")
            proc, port, log = start_tally(env=env)
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                q = Quiz(quiz_pb2, quiz_pb2_grpc.QuizServiceStub(channel), None, None)
                q.submit([q.answer(f"winner-{i:03}", "q1", points=1000 - i, ms=10) for i in range(300)])
                http("/control", {"mode": "throttle", "count": 2, "retry_after": 2, "destination": "winner-000"})
                rewards = q.distribute("payout", (1, 300, "coins", False)).rewards
                assert len(rewards) == 300
            expected = {f"reward:{q.id}:payout:winner-{i:03}" for i in range(300)}
            assert eventually(lambda: len(http("/stats")["delivered"]) >= 60, timeout=30)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc, port, log = start_tally(env=env)
            try:
                assert eventually(lambda: set(http("/stats")["delivered"]) >= expected, timeout=90), \
                    f"{len(expected - set(http('/stats')['delivered']))} messages never delivered"
            finally:
                assert stop_tally(proc) == 0, open(log).read()
            stats = http("/stats")
            assert stats["invalid_signatures"] == 0
            bodies = [a for a in stats["arrivals"] if a["status"] == 200]
            assert sum(1 for a in stats["arrivals"] if a["status"] == 429) == 2
            # Checked on the payload's sent_at, not the arrival: the limits are decided on Redis'
            # clock and sent_at is stamped a task resumption later, while arrivals come after the
            # whole send path (seen up to a quarter of a second late on a loaded machine). 0.85 s
            # windows: the allowance for that resumption, as in NotificationFleetTests.
            assert all(a["sent_at"] is not None for a in bodies)
            times = sorted(a["sent_at"] for a in bodies)
            # Never more than the global rate in any second.
            assert max(sum(1 for t in times[i:i + rate + 1] if t - times[i] < 0.85) for i in range(len(times))) <= rate
            per_user = {}
            for arrival in bodies:
                per_user.setdefault(arrival["destination"], []).append(arrival["sent_at"])
            for user, stamps in per_user.items():
                stamps.sort()
                assert all(b - a >= 0.85 for a, b in zip(stamps, stamps[1:])), user
    finally:
        simulator.stop()
