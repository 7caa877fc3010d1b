import Synchronization

/// What the test server's handlers saw, per method: calls started, request messages read,
/// response messages written.
final class ServerCounts: Sendable {
    struct Tally: Hashable, Sendable {
        var calls = 0
        var requests = 0
        var responses = 0
    }

    private let tallies = Mutex<[String: Tally]>([:])

    func call(_ method: String) { tallies.withLock { $0[method, default: Tally()].calls += 1 } }
    func request(_ method: String) { tallies.withLock { $0[method, default: Tally()].requests += 1 } }
    func response(_ method: String) { tallies.withLock { $0[method, default: Tally()].responses += 1 } }

    subscript(method: String) -> Tally { tallies.withLock { $0[method] ?? Tally() } }
}
