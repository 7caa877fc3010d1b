import Synchronization

/// What other threads may ask of a connection without hopping to its event loop.
final class ConnectionState: Sendable {
    let activeStreams = Atomic<Int>(0)
    /// Why new calls are refused (GOAWAY received, connection closed); nil while open.
    private let refusal = Mutex<CallStatus?>(nil)

    var refusalStatus: CallStatus? { refusal.withLock { $0 } }

    func refuseNewCalls(_ status: CallStatus) {
        refusal.withLock { if $0 == nil { $0 = status } }
    }
}
