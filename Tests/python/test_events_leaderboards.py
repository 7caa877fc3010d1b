"""Events and leaderboards over the wire with grpcio, against a Tally on the run's PostgreSQL
and Redis: every RPC and its error paths."""
import time
import uuid

import grpc
import pytest

from conftest import ADMIN, eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def event(pb, type_="app_launched", user="u", score=0, tournament="", id_=None):
    return pb.Event(id=id_ or unique("ev"), type=type_, user_id=user, client_time_ms=int(time.time() * 1000),
                    score=score, tournament_id=tournament, attributes={"platform": "android"})


def test_track_accepts_rejects_and_dedupes(events):
    pb, stub = events
    good, bad = event(pb), event(pb, user="")
    reply = stub.Track(pb.TrackRequest(events=[good, bad]), timeout=10)
    assert list(reply.accepted_ids) == [good.id]
    assert [(r.id, r.index, r.reason) for r in reply.rejected] == [(bad.id, 1, "events[1].user_id: must not be empty")]
    again = stub.Track(pb.TrackRequest(events=[good]), timeout=10)
    assert list(again.duplicate_ids) == [good.id] and not again.accepted_ids


def test_oversize_batch_is_rejected_whole(events):
    pb, stub = events
    with pytest.raises(grpc.RpcError) as info:
        stub.Track(pb.TrackRequest(events=[event(pb) for _ in range(101)]), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 100" in info.value.details()


def test_stream_acks_every_batch_by_sequence(events):
    pb, stub = events
    batches = [pb.EventBatch(sequence=i, events=[event(pb) for _ in range(5)]) for i in range(1, 21)]
    acks = list(stub.Stream(iter(batches), timeout=20))
    assert [a.sequence for a in acks] == list(range(1, 21))
    assert all(len(a.accepted_ids) == 5 for a in acks)
    assert acks[0].accepted_ids == [e.id for e in batches[0].events]


def test_stream_survives_an_invalid_batch(events):
    pb, stub = events
    batches = [pb.EventBatch(sequence=1, events=[]), pb.EventBatch(sequence=2, events=[event(pb)])]
    acks = list(stub.Stream(iter(batches), timeout=10))
    assert [len(a.accepted_ids) for a in acks] == [0, 1]


def test_recent_needs_the_admin_key(events):
    pb, stub = events
    with pytest.raises(grpc.RpcError) as info:
        stub.Recent(pb.RecentRequest(limit=5), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        stub.Recent(pb.RecentRequest(limit=5), metadata=(("x-admin-key", "wrong"),), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    user = unique("recent")
    sent = event(pb, user=user)
    stub.Track(pb.TrackRequest(events=[sent]), timeout=10)
    found = eventually(lambda: stub.Recent(pb.RecentRequest(limit=10, user_id=user), metadata=ADMIN, timeout=10).events)
    assert [r.event.id for r in found] == [sent.id]
    assert found[0].state == pb.PROCESSING_STATE_PROCESSED
    assert found[0].event.attributes["platform"] == "android"


def test_a_deadline_weeks_away_reaches_postgres(events):
    # Recent reads Postgres with the call's deadline as its statement timeout; one beyond the
    # range Postgres takes (~24.8 days) used to fail every statement.
    pb, stub = events
    user = unique("far-deadline")
    older, newer = event(pb, user=user), event(pb, user=user)
    for sent in (older, newer):  # two calls: the second is received (and listed) later
        assert list(stub.Track(pb.TrackRequest(events=[sent]), timeout=10).accepted_ids) == [sent.id]
    both = eventually(lambda: len(stub.Recent(pb.RecentRequest(limit=10, user_id=user), metadata=ADMIN,
                                              timeout=10).events) == 2)
    assert both, "the tracked events never reached Postgres"
    for timeout in (3600 * 1000, 3600 * 24 * 365 * 50):
        reply = stub.Recent(pb.RecentRequest(limit=1, user_id=user), metadata=ADMIN, timeout=timeout)
        assert [(r.event.id, r.event.user_id, r.state) for r in reply.events] == \
            [(newer.id, user, pb.PROCESSING_STATE_PROCESSED)]


def create_tournament(lb_pb, stub, **fields):
    now = int(time.time() * 1000)
    tournament = lb_pb.Tournament(id=unique("cup"), name="Cup", starts_at_ms=now - 60_000, ends_at_ms=now + 3_600_000, **fields)
    return stub.CreateTournament(lb_pb.CreateTournamentRequest(tournament=tournament), metadata=ADMIN, timeout=10).tournament


def test_game_ended_reaches_the_tournament_board(events, boards):
    pb, event_stub = events
    lb, stub = boards
    cup = create_tournament(lb, stub)
    scores = {"ana": 30, "ben": 50, "cy": 40}
    event_stub.Track(pb.TrackRequest(events=[event(pb, "game_ended", user, score, cup.id) for user, score in scores.items()]), timeout=10)
    board = f"tournament:{cup.id}"
    top = eventually(lambda: (lambda r: r if r.total == 3 else None)(stub.Top(lb.TopRequest(board_id=board, limit=10), timeout=10)))
    assert [(e.rank, e.user_id, e.score) for e in top.entries] == [(1, "ben", 50), (2, "cy", 40), (3, "ana", 30)]
    rank = stub.Rank(lb.RankRequest(board_id=board, user_id="cy", neighbours=1), timeout=10)
    assert rank.entry.rank == 2 and [e.user_id for e in rank.above] == ["ben"] and [e.user_id for e in rank.below] == ["ana"]


def test_submit_top_pages_and_rank(boards):
    lb, stub = boards
    board = f"tournament:{unique('q')}"
    for index in range(25):
        reply = stub.Submit(lb.SubmitRequest(board_id=board, user_id=f"p{index:02}", score=1000 - index, achieved_at_ms=1000),
                            metadata=ADMIN, timeout=10)
        assert reply.improved and reply.entry.rank == index + 1
    worse = stub.Submit(lb.SubmitRequest(board_id=board, user_id="p00", score=1), metadata=ADMIN, timeout=10)
    assert not worse.improved and worse.entry.score == 1000
    seen, cursor = [], ""
    while True:
        page = stub.Top(lb.TopRequest(board_id=board, limit=10, cursor=cursor), timeout=10)
        seen += [e.user_id for e in page.entries]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == [f"p{index:02}" for index in range(25)]
    with pytest.raises(grpc.RpcError) as info:
        stub.Rank(lb.RankRequest(board_id=board, user_id="nobody"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_submit_refuses_quiz_boards(boards):
    # A quiz board holds each user's latest quiz score, written by QuizService with its answers.
    lb, stub = boards
    with pytest.raises(grpc.RpcError) as info:
        stub.Submit(lb.SubmitRequest(board_id=f"quiz:{unique('q')}", user_id="x", score=1), metadata=ADMIN, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "QuizService" in info.value.details()


def test_submission_id_makes_retries_answer_the_same(boards):
    lb, stub = boards
    board = f"tournament:{unique('q')}"
    request = lb.SubmitRequest(board_id=board, user_id="r", score=10, submission_id=unique("sub"))
    assert stub.Submit(request, metadata=ADMIN, timeout=10).improved
    assert stub.Submit(request, metadata=ADMIN, timeout=10).improved


@pytest.mark.parametrize("request_fields,code,fragment", [
    ({"board_id": "weekly"}, grpc.StatusCode.INVALID_ARGUMENT, "board_id"),
    ({"board_id": "global", "limit": 1001}, grpc.StatusCode.INVALID_ARGUMENT, "limit"),
    ({"board_id": "global", "cursor": "nonsense"}, grpc.StatusCode.INVALID_ARGUMENT, "cursor"),
])
def test_top_rejects_bad_requests(boards, request_fields, code, fragment):
    lb, stub = boards
    with pytest.raises(grpc.RpcError) as info:
        stub.Top(lb.TopRequest(**request_fields), timeout=10)
    assert info.value.code() == code and fragment in info.value.details()


def test_submit_and_create_need_the_admin_key(boards):
    lb, stub = boards
    with pytest.raises(grpc.RpcError) as info:
        stub.Submit(lb.SubmitRequest(board_id="global", user_id="x", score=1), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        stub.CreateTournament(lb.CreateTournamentRequest(tournament=lb.Tournament(id="x", name="x")), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_join_tournament_limits_participants(boards):
    lb, stub = boards
    cup = create_tournament(lb, stub, max_participants=1, join_required=True)
    first = stub.JoinTournament(lb.JoinTournamentRequest(tournament_id=cup.id, user_id="a"), timeout=10)
    assert first.joined and first.tournament.participants == 1
    assert not stub.JoinTournament(lb.JoinTournamentRequest(tournament_id=cup.id, user_id="a"), timeout=10).joined
    with pytest.raises(grpc.RpcError) as info:
        stub.JoinTournament(lb.JoinTournamentRequest(tournament_id=cup.id, user_id="b"), timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as info:
        stub.JoinTournament(lb.JoinTournamentRequest(tournament_id="no-such-cup", user_id="b"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_watch_streams_changes(boards):
    lb, stub = boards
    board = f"tournament:{unique('w')}"
    updates = stub.Watch(lb.WatchRequest(board_id=board, limit=3, min_interval_ms=100), timeout=20)
    first = next(updates)
    assert first.total == 0
    stub.Submit(lb.SubmitRequest(board_id=board, user_id="w1", score=5), metadata=ADMIN, timeout=10)
    update = next(updates)
    while update.total < 1:
        update = next(updates)
    assert [e.user_id for e in update.entries] == ["w1"]
    updates.cancel()
