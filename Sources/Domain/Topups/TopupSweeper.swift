public import Logging
public import ServiceLifecycle
import Storage

/// Queues again the top-ups whose job was lost, and prunes old idempotency keys.
///
/// Postgres is the truth and Redis only speeds processing up: a top-up accepted while Redis was
/// unreachable, or whose job vanished (`FLUSHALL`, a Redis restored from an old snapshot), sits
/// unfinished with nobody working on it. Every `sweepInterval` this finds unfinished, unleased,
/// due top-ups untouched for `sweepAfter` and queues those the queue has no live job for. A job
/// id names its top-up, so several instances sweeping at once queue it once; a duplicate job
/// would find the top-up leased or final anyway.
public struct TopupSweeper: Service {
    let topups: Topups
    let logger: Logger
    static let batch = 500

    public init(topups: Topups, logger: Logger) {
        self.topups = topups
        self.logger = logger
    }

    public func run() async throws {
        var nextPrune = ContinuousClock.now  // then once a minute
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            _ = try? await sweep()
            if ContinuousClock.now >= nextPrune {
                _ = try? await prune()
                nextPrune = .now + .seconds(60)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: topups.configuration.sweepInterval) }
        }
    }

    /// One pass; returns how many top-ups were queued again.
    @discardableResult
    public func sweep() async throws -> Int {
        let stalled = try await topups.database.withConnection { connection in
            try await TopupStore.stalled(olderThan: topups.configuration.sweepAfter, limit: Self.batch, on: connection)
        }
        var requeued = 0
        for id in stalled {
            let record = try await topups.queue.record(of: id)
            switch record?.state {
            case .waiting?, .delayed?, .active?:
                continue  // its job is alive
            case nil:
                if try await topups.queue.enqueue(NewJob(id: id, payload: Array(id.utf8))) { requeued += 1 }
            case .completed?, .dead?:
                // The job ended without finishing the top-up (e.g. it was dead-lettered while the
                // database was down): a new job, under a new id.
                let retryID = "\(id):\(UInt64.random(in: 0...UInt64.max))"
                if try await topups.queue.enqueue(NewJob(id: retryID, payload: Array(id.utf8))) { requeued += 1 }
            }
        }
        if requeued > 0 {
            logger.notice("queued top-ups whose job was lost", metadata: ["count": "\(requeued)"])
        }
        return requeued
    }

    /// Deletes idempotency keys past their retention, a batch at a time.
    @discardableResult
    public func prune() async throws -> Int {
        var total = 0
        while true {
            let deleted = try await topups.database.withConnection { connection in
                try await TopupStore.pruneKeys(olderThan: topups.configuration.idempotencyRetention, limit: 5000, on: connection)
            }
            total += deleted
            if deleted < 5000 { return total }
        }
    }
}
