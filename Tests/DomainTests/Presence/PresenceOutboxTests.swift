import Codec
import Synchronization
import Testing

@testable import Domain

/// One stream's outbox without Redis or sockets: coalescing, the interval, a stalled writer.
@Suite("Presence outbox")
struct PresenceOutboxTests {
    static func state(_ version: Int64, _ status: Tally_V1_PresenceStatus = .online, _ activity: String = "") -> PresenceState {
        PresenceState(status: status, activity: activity, changedAtMs: version, version: version)
    }

    /// Waits until the writer waits (a look at a far future is then a delivery).
    static func deliverWhenWaiting(_ outbox: PresenceOutbox, at instant: ContinuousClock.Instant) async throws {
        for _ in 0..<1000 {
            if outbox.tick(instant) == .idle { return }
            try await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("the writer never waited")
    }

    @Test func tenChangesWithinAnIntervalAreOneMessage() async throws {
        let outbox = PresenceOutbox(interval: .seconds(10), stallLimit: .seconds(60)) { _ in }
        let snapshot = Task { await outbox.next() }
        _ = outbox.offer(Self.state(1), of: "ann", urgent: true)
        #expect(await snapshot.value?.changes.map(\.userId) == ["ann"])
        for version in Int64(2)...11 { _ = outbox.offer(Self.state(version, .busy, "change \(version)"), of: "ann") }
        _ = outbox.offer(Self.state(5, .away), of: "ann")  // older than what is queued: dropped
        #expect(outbox.queued == 1)
        let next = Task { await outbox.next() }
        try await Self.deliverWhenWaiting(outbox, at: .now + .seconds(11))
        let message = try #require(await next.value)
        #expect(message.changes.map { [$0.userId, $0.activity] } == [["ann", "change 11"]])
    }

    @Test func aSnapshotDoesNotWaitForTheInterval() async throws {
        let outbox = PresenceOutbox(interval: .seconds(10), stallLimit: .seconds(60)) { _ in }
        let first = Task { await outbox.next() }
        _ = outbox.offer(Self.state(1), of: "ann")
        #expect(await first.value?.changes.count == 1)
        let second = Task { await outbox.next() }
        try await Task.sleep(for: .milliseconds(20))
        _ = outbox.offer(Self.state(2), of: "ann")
        #expect(outbox.queued == 1, "a change within the interval waits")
        _ = outbox.offer(Self.state(1), of: "bob", urgent: true)  // a snapshot goes at once, with what waited
        #expect(await second.value?.changes.map(\.userId) == ["ann", "bob"])
    }

    @Test func aWriterThatNeverComesBackEndsTheStream() async throws {
        let ended = Mutex<RPCError?>(nil)
        // Times are given to the ticker relative to when the writer took its message (the
        // stall is measured from then), with wide margins: a loaded machine cannot move them.
        let outbox = PresenceOutbox(interval: .milliseconds(10), stallLimit: .seconds(10)) { error in ended.withLock { $0 = error } }
        let ticker = PresenceTicker()
        let first = Task { await outbox.next() }
        if outbox.offer(Self.state(1), of: "ann") { ticker.schedule(outbox) }
        _ = await first.value  // the writer took it and is stuck writing it
        let taken = ContinuousClock.now
        for version in Int64(2)...100 where outbox.offer(Self.state(version), of: "ann") { ticker.schedule(outbox) }
        #expect(outbox.queued == 1, "coalesced while the writer is stuck")
        ticker.flush(taken + .seconds(2))
        #expect(ended.withLock { $0 } == nil)
        ticker.flush(taken + .seconds(20))
        #expect(ended.withLock { $0?.code } == .resourceExhausted)
        #expect(await outbox.next() == nil)
    }

    @Test func resubscribingDropsQueuedChangesOfOthers() {
        let outbox = PresenceOutbox(interval: .seconds(10), stallLimit: .seconds(60)) { _ in }
        _ = outbox.offer(Self.state(1), of: "ann")
        _ = outbox.offer(Self.state(1), of: "bob")
        outbox.retain(["bob"])
        #expect(outbox.queued == 1)
    }
}
