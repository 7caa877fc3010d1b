public import Storage
/// `Watch`: the top of a board, sent again whenever it changes, at most once per interval.
///
/// Changes are announced on Redis pub/sub by whichever instance committed them, so a watcher
/// on any instance sees a score submitted on any other. Announcements arriving while the
/// watcher waits out its interval collapse into one read; a read equal to the last one sent
/// is not sent again.
public struct LeaderboardWatch: Sendable {
    let store: LeaderboardStore
    let subscriber: RedisSubscriber

    public init(store: LeaderboardStore, subscriber: RedisSubscriber) {
        self.store = store
        self.subscriber = subscriber
    }

    /// Calls `send` with the current top, then after each change, until the task is cancelled
    /// or `send` throws.
    public func run(
        _ board: BoardID, limit: Int, minInterval: Duration,
        send: (LeaderboardPage) async throws -> Void
    ) async throws {
        // Subscribe before the first read, so no change between the two is missed.
        let changes = subscriber.messages(on: BoardKeys.changes(board, namespace: store.configuration.namespace))
        await subscriber.waitUntilSubscribed(timeout: .seconds(1))
        // Pub/sub is at most once (a reconnect can drop a message), so the board is also
        // re-read every few seconds: a lost announcement delays an update, never loses it.
        var notifications = Self.coalesced(changes, refresh: max(minInterval, .seconds(5))).makeAsyncIterator()
        var last = try await store.top(board, limit: limit, cursor: "")
        try await send(last)
        var lastSent = ContinuousClock.now
        while await notifications.next() != nil {
            let wait = lastSent + minInterval - ContinuousClock.now
            if wait > .zero { try await Task.sleep(for: wait) }
            let page = try await store.top(board, limit: limit, cursor: "")
            guard page.entries != last.entries || page.total != last.total else { continue }
            try await send(page)
            last = page
            lastSent = ContinuousClock.now
        }
        try Task.checkCancellation()
    }

    /// Keeps only the newest pending notification: a burst while the watcher sleeps is one read.
    private static func coalesced(_ messages: AsyncStream<[UInt8]>, refresh: Duration) -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let forward = Task {
            for await _ in messages { continuation.yield() }
            continuation.finish()
        }
        let tick = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: refresh)
                continuation.yield()
            }
        }
        continuation.onTermination = { _ in
            forward.cancel()
            tick.cancel()
        }
        return stream
    }
}
