import Synchronization

/// What other threads may ask of a connection without hopping to its event loop.
final class ConnectionState: Sendable {
    let activeStreams = Atomic<Int>(0)
    /// Mirrors `refusal == nil`, so the per-call check takes no lock.
    private let accepting = Atomic<Bool>(true)
    /// Why new calls are refused (GOAWAY received, connection closed); nil while open.
    private let refusal = Mutex<CallStatus?>(nil)

    var refusalStatus: CallStatus? {
        if accepting.load(ordering: .acquiring) { return nil }
        return refusal.withLock { $0 }
    }

    var isAcceptingCalls: Bool { accepting.load(ordering: .acquiring) }

    func refuseNewCalls(_ status: CallStatus) {
        refusal.withLock { if $0 == nil { $0 = status } }
        accepting.store(false, ordering: .releasing)
    }
}
