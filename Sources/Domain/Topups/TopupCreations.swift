import Logging
import Storage
import Synchronization

/// Group commit for new top-ups: creations arriving while earlier ones are being written are
/// written together, in one statement and one commit, by the next of at most `maxInFlight`
/// writers.
///
/// Each `Topup` call needs its own durable commit before its answer; one commit each bounds a
/// node at Postgres' commit rate (pgbench's for the same row). Under load, calls queue behind
/// the statements in flight and go out as one batch: a lone call still goes at once, and a
/// burst costs one WAL flush per batch instead of per row. Once committed its callers are
/// answered, and then the batch's new top-ups are queued in Redis by one script call
/// (`JobQueue.enqueue` of many jobs): the answer does not wait for Redis' fsync too, and a
/// top-up committed but not queued (a crash in between, Redis down) is queued by
/// `TopupSweeper`, as Postgres holds it.
final class TopupCreations: Sendable {
    struct Request: Sendable {
        var id: String
        var customer: String
        var order: TopupOrder
    }

    private struct Waiting {
        var request: Request
        var continuation: CheckedContinuation<(topup: Topup, replayed: Bool), any Error>
    }

    private struct State {
        var waiting: [Waiting] = []
        var writers = 0
    }

    private let database: PostgresDatabase
    private let queue: JobQueue?
    private let logger: Logger
    private let maxInFlight: Int
    private let maxBatch: Int
    private let state = Mutex(State())

    init(database: PostgresDatabase, queue: JobQueue?, logger: Logger = Logger(label: "tally.topups"), maxInFlight: Int = 4,
         maxBatch: Int = 500) {
        self.database = database
        self.queue = queue
        self.logger = logger
        self.maxInFlight = maxInFlight
        self.maxBatch = maxBatch
    }

    /// The new top-up, or the one the customer's key already names (`replayed`).
    func create(_ request: Request) async throws -> (topup: Topup, replayed: Bool) {
        try await withCheckedThrowingContinuation { continuation in
            let batch = state.withLock { state -> [Waiting]? in
                state.waiting.append(Waiting(request: request, continuation: continuation))
                guard state.writers < maxInFlight else { return nil }
                state.writers += 1
                return take(&state)
            }
            if let batch { Task { await write(batch) } }
        }
    }

    /// Queues new top-ups for the workers. Accepted all the same when Redis is unreachable:
    /// Postgres holds them and the sweeper queues them once Redis answers.
    private func enqueue(_ ids: [String]) async {
        guard let queue, !ids.isEmpty else { return }
        do {
            _ = try await queue.enqueue(ids.map { NewJob(id: $0, payload: Array($0.utf8)) })
        } catch {
            logger.warning("top-ups accepted but not queued (Redis unreachable); the sweeper will queue them",
                           metadata: ["count": "\(ids.count)", "error": "\(error)"])
        }
    }

    private func take(_ state: inout State) -> [Waiting] {
        let count = min(maxBatch, state.waiting.count)
        defer { state.waiting.removeFirst(count) }
        return Array(state.waiting.prefix(count))
    }

    /// Writes batches until nobody is waiting.
    private func write(_ first: [Waiting]) async {
        var batch = first
        while !batch.isEmpty {
            do {
                let results = try await database.withConnection { connection in
                    try await TopupStore.create(batch.map(\.request), on: connection)
                }
                for (waiting, result) in zip(batch, results) {
                    if let result {
                        waiting.continuation.resume(returning: result)
                    } else {
                        waiting.continuation.resume(throwing: TopupStore.KeyVanished())
                    }
                }
                await enqueue(results.compactMap { $0.flatMap { $0.replayed ? nil : $0.topup.id } })
            } catch {
                for waiting in batch { waiting.continuation.resume(throwing: error) }
            }
            batch = state.withLock { state in
                if state.waiting.isEmpty {
                    state.writers -= 1
                    return []
                }
                return take(&state)
            }
        }
    }
}
