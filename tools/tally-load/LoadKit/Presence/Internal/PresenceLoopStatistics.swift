import Synchronization

/// The statistics of the streams and the driver of one event loop. They all run on that loop's
/// thread, so the lock is not contended (see `LoopStatistics`).
final class PresenceLoopStatistics: Sendable {
    private let statistics = Mutex(PresenceStatistics())

    func record(message changes: Int, delivered sendTimes: [Int64], repeats: Int, receivedAt: Int64) {
        statistics.withLock { statistics in
            statistics.messagesReceived += 1
            statistics.changesReceived += changes
            statistics.repeats += repeats
            for sentAt in sendTimes { statistics.recordDelivery(sentAt: sentAt, receivedAt: receivedAt) }
        }
    }

    func recordSent(changes: Int, heartbeats: Int) {
        guard changes > 0 || heartbeats > 0 else { return }
        statistics.withLock {
            $0.changesSent += changes
            $0.heartbeatsSent += heartbeats
        }
    }

    func recordOutcome(_ status: String, message: String, streams: Int = 1) {
        statistics.withLock { statistics in
            for _ in 0..<streams { statistics.recordOutcome(status, message: message) }
        }
    }

    var snapshot: PresenceStatistics { statistics.withLock { $0 } }
}
