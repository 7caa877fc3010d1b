import Units

import Codec
import NIOCore

/// Sends the status changes and heartbeats of one event loop's streams, on that loop: every
/// tick, what became due on the schedule (a fixed rate, open loop, so a slow server does not
/// slow the senders down), changes to streams drawn at random, heartbeats round-robin so each
/// stream gets one per heartbeat period.
struct PresenceDriver: Sendable {
    let index: Int
    let loop: any EventLoop
    let streams: [PresenceStream]
    let statistics: PresenceLoopStatistics
    let control: PresenceControl
    /// This loop's share of the changes (its share of the streams), per nanosecond.
    let changesPerNanosecond: Double
    let heartbeat: Duration
    let seed: UInt64

    static let tick: UInt64 = 5_000_000
    static let statuses: [Tally_V1_PresenceStatus] = [.online, .away, .busy]

    func run() async {
        guard !streams.isEmpty else { return }
        var random = FastRandom.stream(1_000_000 + index, of: seed)
        let heartbeatsPerNanosecond = Double(streams.count) / Double(Monotonic.nanoseconds(heartbeat))
        let start = Monotonic.now()
        var heartbeatsDue = 0
        var changesDue = 0
        while !control.isStopped {
            await sleep(until: Monotonic.now() + Self.tick)
            let now = Monotonic.now()
            var sentHeartbeats = 0
            let heartbeats = Int(Double(now - start) * heartbeatsPerNanosecond)
            while heartbeatsDue < heartbeats {
                let stream = streams[heartbeatsDue % streams.count]
                heartbeatsDue += 1
                if await stream.sendHeartbeat() { sentHeartbeats += 1 }
            }
            var sentChanges = 0
            if let window = control.changeWindow, now > window.start {
                let changes = Int(Double(min(now, window.end) - window.start) * changesPerNanosecond)
                while changesDue < changes {
                    changesDue += 1
                    let stream = streams[Int(random.next() % UInt64(streams.count))]
                    let status = Self.statuses[Int(random.next() % UInt64(Self.statuses.count))]
                    if await stream.sendChange(status) { sentChanges += 1 }
                }
            }
            statistics.recordSent(changes: sentChanges, heartbeats: sentHeartbeats)
        }
    }

    /// Suspends until `deadline` (monotonic ns) on the loop's timer.
    private func sleep(until deadline: UInt64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            loop.scheduleTask(deadline: .uptimeNanoseconds(deadline)) { continuation.resume() }
        }
    }
}
