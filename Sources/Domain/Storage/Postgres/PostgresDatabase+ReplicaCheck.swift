import Units

extension PostgresDatabase {
    /// Measures the replica once: the primary's WAL position, then the replica's replayed
    /// position (`ReplicaLag`), and moves reads to or from it. `run()` calls it every
    /// `ReadPolicy.checkInterval`; tests call it directly.
    ///
    /// A server that is not in recovery (not a standby: the primary itself behind another
    /// name, or a pooler in front of it) has no replay position; it serves reads with its lag
    /// taken as zero.
    public func checkReplica() async {
        guard let replica else { return }
        // Long enough for a busy server, short enough that a hung one is noticed soon.
        let deadline = ContinuousClock.now + max(readPolicy.checkInterval * 4, .seconds(1))
        if let written = try? await primary.withConnection(deadline: deadline, {
            try await $0.query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8").scalar(Int64.self)
        }) {
            let now = ContinuousClock.now
            health.withLock { $0.lag.primary(at: now, lsn: written) }
        }
        let replayed: Int64?
        do {
            replayed = try await replica.withConnection(deadline: deadline) { connection in
                let row = try await connection.query(
                    "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8")[0]
                guard try row.decode(0, as: Bool.self) else { return nil }
                return try row.decode(1, as: Int64?.self) ?? 0
            }
        } catch {
            replicaFailed(error)
            return
        }
        let maxLag = readPolicy.maxLag
        let (was, now) = health.withLock { health -> (ReplicaState, ReplicaState) in
            var lag = Duration.zero
            if let replayed { lag = health.lag.replayed(replayed, now: .now) }
            let was = health.state
            health.state = lag <= maxLag ? .serving(lag: lag) : .lagging(lag: lag)
            return (was, health.state)
        }
        switch (was, now) {
        case (.serving, .serving), (.lagging, .lagging): break
        case (_, .serving):
            logger.notice("read replica serving reads", metadata: ["lag_ms": "\(now.lag?.milliseconds ?? 0)"])
        default:
            logger.warning("read replica lagging; reads go to the primary", metadata: [
                "lag_ms": "\(now.lag?.milliseconds ?? 0)", "max_lag_ms": "\(maxLag.milliseconds)",
            ])
        }
    }
}
