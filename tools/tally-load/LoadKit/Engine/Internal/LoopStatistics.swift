import Synchronization

/// The statistics of the workers on one event loop, one `RPCStatistics` per workload.
///
/// Those workers all run on that loop's thread, so the lock is never contended; it only makes
/// the sharing safe to the compiler and to the final merge. One per loop rather than one per
/// connection: each holds a latency histogram per workload (about 220 KB of counters), and
/// the fewer of them a thread writes to, the more of them stays in its cache.
final class LoopStatistics: Sendable {
    private let perWorkload: Mutex<[RPCStatistics]>

    init(workloads: Int) {
        self.perWorkload = Mutex(Array(repeating: RPCStatistics(), count: workloads))
    }

    func record(_ outcome: CallOutcome, workload: Int, latency: UInt64, sendDelay: UInt64 = 0) {
        perWorkload.withLock { $0[workload].record(outcome, latency: latency, sendDelay: sendDelay) }
    }

    var snapshot: [RPCStatistics] { perWorkload.withLock { $0 } }
}
