import Codec
import Synchronization

/// Process-wide counters of the transport, read by health and admin stats. Made before the
/// server (`GRPCServer(statistics:)`) so services created first, like AdminService, can read it.
public final class ServerStatistics: Sendable {
    private let connections = Atomic<Int>(0)
    private let streams = Atomic<Int>(0)
    private let connectionsTotal = Atomic<Int>(0)
    private let connectionsRefused = Atomic<Int>(0)
    private let callsOK = Atomic<Int>(0)
    private let callsFailed = Atomic<Int>(0)
    private let callsCancelled = Atomic<Int>(0)
    private let callsDeadlineExceeded = Atomic<Int>(0)

    public struct Snapshot: Sendable, Hashable {
        public var openConnections: Int
        /// HTTP/2 streams open on all connections (calls in progress, or just closing).
        public var openStreams: Int
        public var totalConnections: Int
        public var refusedConnections: Int
        public var callsSucceeded: Int
        public var callsFailed: Int
        /// Of the failed calls, those the client cancelled (RST_STREAM) before they finished.
        public var callsCancelled: Int
        /// Of the failed calls, those whose deadline passed before they finished.
        public var callsDeadlineExceeded: Int
    }

    public init() {}

    func streamOpened() { streams.add(1, ordering: .relaxed) }
    func streamsClosed(_ count: Int) { streams.subtract(count, ordering: .relaxed) }

    func connectionOpened() {
        connections.add(1, ordering: .relaxed)
        connectionsTotal.add(1, ordering: .relaxed)
    }

    func connectionClosed() { connections.subtract(1, ordering: .relaxed) }
    func connectionRefused() { connectionsRefused.add(1, ordering: .relaxed) }

    func recordCall(_ code: StatusCode) {
        guard code != .ok else {
            callsOK.add(1, ordering: .relaxed)
            return
        }
        callsFailed.add(1, ordering: .relaxed)
        if code == .cancelled { callsCancelled.add(1, ordering: .relaxed) }
        if code == .deadlineExceeded { callsDeadlineExceeded.add(1, ordering: .relaxed) }
    }

    public var snapshot: Snapshot {
        Snapshot(
            openConnections: connections.load(ordering: .relaxed),
            openStreams: streams.load(ordering: .relaxed),
            totalConnections: connectionsTotal.load(ordering: .relaxed),
            refusedConnections: connectionsRefused.load(ordering: .relaxed),
            callsSucceeded: callsOK.load(ordering: .relaxed),
            callsFailed: callsFailed.load(ordering: .relaxed),
            callsCancelled: callsCancelled.load(ordering: .relaxed),
            callsDeadlineExceeded: callsDeadlineExceeded.load(ordering: .relaxed))
    }
}
