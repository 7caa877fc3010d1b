import Synchronization

/// Serving status per service name, for `grpc.health.v1.Health` (the empty name is the
/// whole server). Watchers get every change; draining flips everything to NOT_SERVING.
public final class HealthStatusBoard: Sendable {
    public enum Status: Int, Sendable, Hashable {
        case unknown = 0
        case serving = 1
        case notServing = 2
        case serviceUnknown = 3
    }

    private struct State {
        var statuses: [String: Status] = [:]
        var watchers: [Int: (service: String, continuation: AsyncStream<Status>.Continuation)] = [:]
        var nextWatcher = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Sets a service's status and tells its watchers.
    public func set(_ service: String, _ status: Status) {
        let watchers = state.withLock { state in
            state.statuses[service] = status
            return state.watchers.values.filter { $0.service == service }.map(\.continuation)
        }
        for watcher in watchers { watcher.yield(status) }
    }

    /// Marks every known service NOT_SERVING (the server is draining).
    public func setAllNotServing() {
        let names = state.withLock { Array($0.statuses.keys) }
        for name in names { set(name, .notServing) }
    }

    /// The current status; nil for a service never registered.
    public func status(of service: String) -> Status? {
        state.withLock { $0.statuses[service] }
    }

    /// Status changes for one service, starting with the current one (SERVICE_UNKNOWN for a
    /// service not registered, as the health protocol says for Watch).
    public func watch(_ service: String) -> AsyncStream<Status> {
        let (stream, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(8))
        let id = state.withLock { state -> Int in
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = (service, continuation)
            continuation.yield(state.statuses[service] ?? .serviceUnknown)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
        }
        return stream
    }
}
