public import Logging
public import ServiceLifecycle
import Storage

/// Queues the outbox rows whose job never came or was lost.
///
/// A message recorded by a transaction whose process died before `dispatch`, or dispatched
/// while Redis was unreachable, has a row never queued; a job Redis lost (`FLUSHALL`, an old
/// snapshot) leaves a row queued long ago and still pending. Every `sweepInterval` this looks
/// at up to `sweepBatch` such rows, oldest mark first, and queues those the queue holds no live
/// job for. A row whose job is alive (delayed by a pause, say) is marked queued now, so the next
/// passes look at other rows instead of the same oldest ones. Job ids are message ids, so
/// instances sweeping at once queue a message once.
public struct NotificationSweeper: Service {
    let notifications: Notifications
    let logger: Logger

    public init(notifications: Notifications, logger: Logger) {
        self.notifications = notifications
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await sweep()
            } catch {
                logger.debug("notification sweep failed; next pass retries", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: notifications.configuration.sweepInterval) }
        }
    }

    /// One pass; returns how many messages were queued.
    @discardableResult
    public func sweep() async throws -> Int {
        let configuration = notifications.configuration, queue = notifications.queue
        let ids = try await notifications.database.withConnection { connection in
            try await NotificationStore.unqueued(olderThan: configuration.sweepAfter, limit: configuration.sweepBatch, on: connection)
        }
        var queued: [String] = [], seen: [String] = []
        for id in ids {
            let record = try await queue.record(of: id)
            switch record?.state {
            case .waiting?, .delayed?, .active?:
                seen.append(id)
            case nil:
                if try await queue.enqueue(NewJob(id: id, payload: Array(id.utf8))) { queued.append(id) } else { seen.append(id) }
            case .completed?:
                // The job ended without the row saying so (its last write was lost): a new job,
                // under a new id, which finds the row and sends it or sees it done.
                let retryID = "\(id):\(UInt64.random(in: 0...UInt64.max))"
                if try await queue.enqueue(NewJob(id: retryID, payload: Array(id.utf8))) { queued.append(id) }
            case .dead?:
                // Out of attempts while the row could not be written: it is dead.
                try await notifications.database.withConnection { connection in
                    try await NotificationStore.markDead(id: id, error: record?.lastError ?? "dead-lettered", on: connection)
                }
            }
        }
        try await notifications.database.withConnection { try await NotificationStore.markQueued(queued + seen, on: $0) }
        if !queued.isEmpty {
            logger.notice("queued notifications whose job was missing", metadata: ["count": "\(queued.count)"])
        }
        return queued.count
    }
}
