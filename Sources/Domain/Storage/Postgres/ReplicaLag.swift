/// How far a streaming standby is behind its primary, in time, from WAL positions alone.
///
/// Each check samples the primary's WAL position (`pg_current_wal_lsn()`) with the time it was
/// taken, then the standby's replayed position (`pg_last_wal_replay_lsn()`). The standby's lag
/// is the age of the oldest sample it has not replayed yet: it lacks something the primary had
/// written by then. Measured this way, an idle primary reads as no lag (a
/// `now() - pg_last_xact_replay_timestamp()` measure grows without bound while nothing is
/// written), and neither server's clock matters. The figure errs short by at most one check
/// interval. I/O-free: `PostgresDatabase` feeds it.
struct ReplicaLag: Sendable {
    /// Primary positions not yet replayed by the standby, oldest first.
    private var samples: [(at: ContinuousClock.Instant, lsn: Int64)] = []
    /// Samples kept at most: a standby this far behind stays "lagging"; newer samples are
    /// dropped rather than older ones, so the measured lag never shrinks while it is behind.
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// The primary had written up to `lsn` at `at`.
    mutating func primary(at: ContinuousClock.Instant, lsn: Int64) {
        guard samples.count < capacity, samples.last.map({ lsn > $0.lsn }) ?? true else { return }
        samples.append((at, lsn))
    }

    /// The standby has replayed up to `lsn`; returns its lag at `now`.
    mutating func replayed(_ lsn: Int64, now: ContinuousClock.Instant) -> Duration {
        samples.removeAll { $0.lsn <= lsn }
        return samples.first.map { now - $0.at } ?? .zero
    }
}
