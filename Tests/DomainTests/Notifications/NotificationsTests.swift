import Foundation
import Storage
import TestSupport
import Testing

@testable import Domain

/// The outbox, the workers and their answers to the sink, on real PostgreSQL and Redis.
@Suite("Notifications")
struct NotificationsTests {
    @Test("recorded and dispatched messages are delivered by the log sink and counted")
    func logSink() async throws {
        try await NotificationsHarness.withStores { database, redis, namespace in
            let notifications = NotificationsHarness.make(database, redis, namespace, sink: LogSink(),
                                                          configuration: NotificationsHarness.configuration())
            let messages = NotificationsHarness.messages(20, destinations: 5)
            try await NotificationsHarness.running(notifications) { () async throws in
                try await NotificationsHarness.send(messages, via: notifications, database: database)
                #expect(try await eventually { try await notifications.statistics.delivered == 20 })
            }
            for message in messages {
                let row = try await NotificationsHarness.row(message.id, database)
                #expect(row?.status == "delivered" && row?.attempts == 1)
            }
            let statistics = try await notifications.statistics
            #expect(statistics.pending == 0 && statistics.dead == 0 && statistics.waiting == 0 && statistics.inFlight == 0)
        }
    }

    @Test("recording twice keeps one row, and dispatching twice sends once")
    func idempotent() async throws {
        try await NotificationsHarness.withStores { database, redis, namespace in
            let sink = ScriptedSink { _, _ in .delivered }
            let notifications = NotificationsHarness.make(database, redis, namespace, sink: sink, configuration: NotificationsHarness.configuration())
            let message = NotificationMessage(id: "reward:q1:d1:u1", destination: "u1", kind: "quiz.reward", body: "{}")
            try await NotificationsHarness.send([message], via: notifications, database: database)
            try await NotificationsHarness.send([message], via: notifications, database: database)
            try await NotificationsHarness.running(notifications) { () async throws in
                #expect(try await eventually { try await notifications.statistics.delivered == 1 })
            }
            #expect(sink.calls(to: message.id).count == 1)
        }
    }

    /// The limits are decided on Redis' clock; the sink records calls on this process' clock a
    /// Redis reply and a task hop later, a path whose length varies, by tens of milliseconds
    /// when the machine is busy (every suite at once). The checks are on spans of several
    /// intervals, so this allowance is paid once, not once per send: a limiter letting sends
    /// through twice as fast would shorten them by whole seconds. (100 ms was seen exceeded by
    /// 8 ms on a CI run with two builds beside it.)
    static let sendPathJitter = Duration.milliseconds(400)

    @Test("sends are spaced by the per-destination and the global limit, without counting attempts")
    func limitsSpaceSends() async throws {
        try await NotificationsHarness.withStores { database, redis, namespace in
            let sink = ScriptedSink { _, _ in .delivered }
            let notifications = NotificationsHarness.make(database, redis, namespace, sink: sink, configuration: NotificationsHarness.configuration {
                $0.ratePerDestinationPerSecond = 2
                $0.globalRatePerSecond = 5
            })
            // Six messages to one user, six to six others.
            let messages = (0..<6).map { NotificationMessage(id: "same-\($0)", destination: "busy", kind: "k", body: "{}") }
                + (0..<6).map { NotificationMessage(id: "other-\($0)", destination: "user-\($0)", kind: "k", body: "{}") }
            try await NotificationsHarness.running(notifications) { () async throws in
                try await NotificationsHarness.send(messages, via: notifications, database: database)
                #expect(try await eventually(attempts: 500) { try await notifications.statistics.delivered == 12 })
            }
            let calls = sink.calls.sorted { $0.at < $1.at }
            try #require(calls.count == 12)
            #expect(calls.allSatisfy { $0.attempt == 1 })
            // Twelve sends at 5/s in all span at least 11 intervals of 200 ms...
            #expect(calls[11].at - calls[0].at >= .milliseconds(2200) - Self.sendPathJitter, "global: 5/s")
            // ...and six to one user at 2/s at least 5 intervals of 500 ms.
            let busy = calls.filter { $0.destination == "busy" }
            try #require(busy.count == 6)
            #expect(busy[5].at - busy[0].at >= .milliseconds(2500) - Self.sendPathJitter, "per destination: 2/s")
        }
    }

    @Test("a 429 pauses its destination for every worker, and only it")
    func throttlePausesDestination() async throws {
        try await NotificationsHarness.withStores { database, redis, namespace in
            // Long enough that the five other sends land inside it even on a loaded machine
            // (under a CPU hog they came up to 4.3 s after the 429; a 2 s pause failed there).
            let pause = Duration.seconds(10)
            // The first send of a-1 is throttled; everything else goes through.
            let sink = ScriptedSink { message, call in
                message.id == "a-1" && call == 1 ? .throttled(retryAfter: pause) : .delivered
            }
            let notifications = NotificationsHarness.make(database, redis, namespace, sink: sink, configuration: NotificationsHarness.configuration())
            let first = NotificationMessage(id: "a-1", destination: "user-a", kind: "k", body: "{}")
            let second = NotificationMessage(id: "a-2", destination: "user-a", kind: "k", body: "{}")
            let others = (0..<5).map { NotificationMessage(id: "b-\($0)", destination: "user-b\($0)", kind: "k", body: "{}") }
            try await NotificationsHarness.running(notifications) { () async throws in
                try await NotificationsHarness.send([first], via: notifications, database: database)
                #expect(try await eventually { try await notifications.statistics.pausedDestinations == 1 })
                try await NotificationsHarness.send([second] + others, via: notifications, database: database)
                #expect(try await eventually(attempts: 2000) { try await notifications.statistics.delivered == 7 })
            }
            let throttledAt = try #require(sink.calls(to: "a-1").first?.at)
            let resumedAt = try #require(sink.calls.filter { $0.destination == "user-a" }.dropFirst().first?.at)
            // Nothing went to user-a during its pause (the sink's own clock; no tolerance needed:
            // the pause started after the 429 was received).
            #expect(resumedAt - throttledAt >= pause)
            // The other destinations were not held back by it.
            for other in others {
                let sent = try #require(sink.calls(to: other.id).first?.at)
                #expect(sent < resumedAt)
            }
            // A throttled send is not a failed attempt.
            #expect(sink.calls(to: "a-1").map(\.attempt) == [1, 1])
        }
    }

    @Test("a 5xx is retried with backoff, then dead after the last attempt")
    func retriesThenDead() async throws {
        try await NotificationsHarness.withStores { database, redis, namespace in
            let sink = ScriptedSink { _, _ in .retryable(reason: "HTTP 503") }
            let notifications = NotificationsHarness.make(database, redis, namespace, sink: sink,
                                                          configuration: NotificationsHarness.configuration { $0.maxAttempts = 3 })
            let message = NotificationMessage(id: "doomed", destination: "u", kind: "k", body: "{}")
            try await NotificationsHarness.running(notifications) { () async throws in
                try await NotificationsHarness.send([message], via: notifications, database: database)
                #expect(try await eventually { try await notifications.statistics.dead == 1 })
                #expect(try await eventually { try await notifications.statistics.deadLettered == 1 })
            }
            #expect(sink.calls(to: "doomed").map(\.attempt) == [1, 2, 3])
            let row = try await NotificationsHarness.row("doomed", database)
            #expect(row?.status == "dead" && row?.attempts == 3 && row?.lastError == "HTTP 503")
            #expect(try await notifications.jobQueue.deadLetters().contains("doomed"))
        }
    }

    @Test("a 4xx other than 429 is dead at once")
    func rejectedIsDead() async throws {
        try await NotificationsHarness.withStores { database, redis, namespace in
            let sink = ScriptedSink { _, _ in .rejected(reason: "HTTP 404") }
            let notifications = NotificationsHarness.make(database, redis, namespace, sink: sink, configuration: NotificationsHarness.configuration())
            try await NotificationsHarness.running(notifications) { () async throws in
                try await NotificationsHarness.send([NotificationMessage(id: "gone", destination: "u", kind: "k", body: "{}")],
                                                    via: notifications, database: database)
                #expect(try await eventually { try await notifications.statistics.dead == 1 })
            }
            #expect(sink.calls(to: "gone").count == 1)
            let row = try await NotificationsHarness.row("gone", database)
            #expect(row?.status == "dead" && row?.lastError == "rejected by the sink: HTTP 404")
        }
    }

    @Test("the sweeper queues a recorded message whose dispatch never happened, once")
    func sweeperQueuesUndispatched() async throws {
        try await NotificationsHarness.withStores { database, redis, namespace in
            let sink = ScriptedSink { _, _ in .delivered }
            let notifications = NotificationsHarness.make(database, redis, namespace, sink: sink,
                                                          configuration: NotificationsHarness.configuration { $0.sweepAfter = .milliseconds(1) })
            let message = NotificationMessage(id: "orphan", destination: "u", kind: "k", body: "{}")
            // Committed, then the process "died" before dispatch.
            try await database.withTransaction { try await Notifications.record([message], on: $0) }
            #expect(try await notifications.jobQueue.record(of: "orphan") == nil)
            try await Task.sleep(for: .milliseconds(5))  // older than sweepAfter
            let sweeper = NotificationSweeper(notifications: notifications, logger: notifications.logger)
            #expect(try await sweeper.sweep() == 1)
            #expect(try await notifications.jobQueue.record(of: "orphan")?.state == .waiting)
            // Its job is alive now: a second pass queues nothing.
            try await Task.sleep(for: .milliseconds(5))
            #expect(try await sweeper.sweep() == 0)
            try await NotificationsHarness.running(notifications) { () async throws in
                #expect(try await eventually { try await notifications.statistics.delivered == 1 })
            }
            #expect(sink.calls(to: "orphan").count == 1)
        }
    }

    @Test("the sweeper queues again a message whose job ended without delivering it")
    func sweeperQueuesLost() async throws {
        try await NotificationsHarness.withStores { database, redis, namespace in
            let sink = ScriptedSink { _, _ in .delivered }
            let notifications = NotificationsHarness.make(database, redis, namespace, sink: sink,
                                                          configuration: NotificationsHarness.configuration { $0.sweepAfter = .milliseconds(1) })
            let message = NotificationMessage(id: "lost", destination: "u", kind: "k", body: "{}")
            try await NotificationsHarness.send([message], via: notifications, database: database)
            // The job ends but the row never hears of it (its last write lost), no worker running.
            let claimed = try await notifications.jobQueue.claim(max: 10)
            #expect(claimed.map(\.id) == ["lost"])
            try await notifications.jobQueue.complete(["lost"], lease: claimed[0].lease)
            try await Task.sleep(for: .milliseconds(5))
            let sweeper = NotificationSweeper(notifications: notifications, logger: notifications.logger)
            #expect(try await sweeper.sweep() == 1)
            try await NotificationsHarness.running(notifications) { () async throws in
                #expect(try await eventually { try await notifications.statistics.delivered == 1 })
            }
        }
    }
}
