import Logging
import Storage

/// The queue worker's job: send one recorded notification, within the limits, and record the
/// result in the outbox.
///
/// 1. Read the row: a message already delivered or dead (a second delivery of the job, or one
///    the sweeper re-queued) ends here.
/// 2. A paused destination, or a limit that says not yet, puts the job back for that long
///    without counting an attempt (`JobNotDue`).
/// 3. Send, then record: delivered; throttled (pause the destination for every instance, put
///    back); retryable (a failed attempt: the queue's backoff, or dead after the last);
///    rejected (dead at once).
/// A worker killed mid-send leaves the job leased; it comes back after the lease and is sent
/// again: at least once, the sink deduplicating on the id.
struct NotificationCourier: Sendable {
    let database: PostgresDatabase
    let sink: any NotificationSink
    let pacer: NotificationPacer
    let pauses: DestinationPauses
    let defaultPause: Duration
    let logger: Logger

    /// A send that failed for now; the queue retries it with backoff.
    struct SendFailed: Error, CustomStringConvertible {
        var description: String
    }

    func deliver(_ job: Job) async throws {
        let id = String(decoding: job.payload, as: UTF8.self)
        guard let message = try await outbox({ try await NotificationStore.pending(id: id, on: $0) }) else { return }
        do {
            if let paused = try await pauses.remaining(message.destination) { throw JobNotDue(retryAfter: paused) }
            if let wait = await pacer.admit(destination: message.destination) { throw JobNotDue(retryAfter: wait) }
        } catch let error as RedisError {
            throw DependencyUnavailable(reason: "\(error)")
        }

        switch await sink.deliver(message, attempt: job.attempt) {
        case .delivered:
            try await record(id, status: "delivered", error: nil)
        case .throttled(let retryAfter):
            let pause = retryAfter ?? defaultPause
            // Not a failed attempt: the sink is fine, it asks for room.
            try await record(id, status: "pending", error: "throttled by the sink for \(pause)")
            do {
                try await pauses.pause(message.destination, for: pause)
            } catch {
                logger.warning("pausing a destination failed; its message still waits", metadata: ["error": "\(error)"])
            }
            throw JobNotDue(retryAfter: max(pause, .milliseconds(1)))
        case .retryable(let reason):
            let last = job.attempt >= job.maxAttempts
            try await record(id, status: last ? "dead" : "pending", error: reason)
            if last {
                logger.warning("notification dead after its last attempt", metadata: ["id": "\(id)", "error": "\(reason)"])
            }
            // Failing the job: retried with backoff, or dead-lettered after the last attempt.
            throw SendFailed(description: reason)
        case .rejected(let reason):
            try await record(id, status: "dead", error: "rejected by the sink: \(reason)")
            logger.warning("notification rejected by the sink", metadata: ["id": "\(id)", "error": "\(reason)"])
        }
    }

    private func record(_ id: String, status: String, error: String?) async throws {
        try await outbox { try await NotificationStore.recordSend(id: id, status: status, error: error, on: $0) }
    }

    /// A statement on the outbox; Postgres down postpones the job instead of failing it.
    private func outbox<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await database.withConnection(body)
        } catch let error as PostgresError where error.rpcError.code == .unavailable {
            throw DependencyUnavailable(retryAfter: .seconds(1), reason: "\(error)")
        }
    }
}
