import Synchronization

/// The statistics of the workers on one connection, one `RPCStatistics` per workload.
///
/// Those workers all run on the connection's event loop, so the lock is never contended;
/// it only makes the sharing safe to the compiler and to the final merge.
final class ConnectionStatistics: Sendable {
    private let perWorkload: Mutex<[RPCStatistics]>

    init(workloads: Int) {
        self.perWorkload = Mutex(Array(repeating: RPCStatistics(), count: workloads))
    }

    func record(_ outcome: CallOutcome, workload: Int, latency: UInt64) {
        perWorkload.withLock { $0[workload].record(outcome, latency: latency) }
    }

    var snapshot: [RPCStatistics] { perWorkload.withLock { $0 } }
}
