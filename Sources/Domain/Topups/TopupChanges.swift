import Logging
public import Storage

/// State changes of top-ups across instances: the worker that changes one publishes its id on
/// the top-up's own channel; a `WatchTopup` on any instance re-reads it from Postgres.
///
/// Pub/sub may drop a message (Redis restarting), so a watcher also re-reads every
/// `pollInterval`: a missed notification delays an update, never loses it.
public struct TopupChanges: Sendable {
    let redis: RedisClient
    let subscriber: RedisSubscriber
    let pollInterval: Duration

    public init(redis: RedisClient, subscriber: RedisSubscriber, pollInterval: Duration = .seconds(1)) {
        self.redis = redis
        self.subscriber = subscriber
        self.pollInterval = pollInterval
    }

    static func channel(of id: String) -> String { "tally:topup:\(id)" }

    /// Tells watchers the top-up changed (best effort: they also poll).
    func announce(_ id: String) async {
        _ = try? await redis.publish(Array(id.utf8), to: Self.channel(of: id))
    }

    /// Sends `first`, then every version `read` returns that differs from the last sent, until
    /// one is final (or the task is cancelled).
    func follow(id: String, first: Topup, read: @escaping @Sendable () async throws -> Topup?,
                send: @escaping @Sendable (Topup) async throws -> Void) async throws {
        try await send(first)
        guard !first.state.isFinal else { return }
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let notifications = subscriber.messages(on: Self.channel(of: id))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in notifications { wake.yield() }
            }
            group.addTask { [pollInterval] in
                while !Task.isCancelled {
                    try await Task.sleep(for: pollInterval)
                    wake.yield()
                }
            }
            // A change between `first` and the subscription is caught by the first poll.
            var last = first
            for await _ in wakeups {
                guard let current = try await read() else { break }
                if current != last {
                    try await send(current)
                    last = current
                }
                if current.state.isFinal { break }
            }
            group.cancelAll()
        }
    }
}
