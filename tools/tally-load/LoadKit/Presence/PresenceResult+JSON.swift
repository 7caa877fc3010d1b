import Units

/// The machine-readable report of a presence load (`--format json`), latencies in milliseconds.
extension PresenceResult {
    public func jsonReport() -> JSONValue {
        let c = configuration
        let s = statistics
        let latency: JSONValue = s.measured == 0 ? .null : .object(LoadResult.percentiles(s.latency, mean: s.meanLatency))
        return .object([
            .init("streams", .int(c.streams)),
            .init("first_user", .int(c.firstUser)),
            .init("users", .int(c.users)),
            .init("streams_per_connection", .int(c.streamsPerConnection)),
            .init("targets", .int(c.targets.count)),
            .init("subscriptions", .int(c.subscriptions)),
            .init("target_changes_per_second", .double(c.changesPerSecond)),
            .init("interval_ms", .int(c.interval.nanoseconds / 1_000_000)),
            .init("open_streams", .int(openStreams)),
            .init("open_seconds", .double(openSeconds)),
            .init("change_seconds", .double(changeSeconds)),
            .init("changes_sent", .int(changesSent)),
            .init("changes_sent_per_second", .double(rate(changesSent))),
            .init("heartbeats_sent", .int(s.heartbeatsSent)),
            .init("messages_received_per_second", .double(rate(messagesDuringChanges))),
            .init("states_received_per_second", .double(rate(changesReceivedDuringChanges))),
            .init("deliveries_measured", .int(s.measured)),
            .init("repeats", .int(s.repeats)),
            .init("latency_ms", latency),
            .init("bar_ms", .int(c.bar.nanoseconds / 1_000_000)),
            .init("bar_met", meetsBar.map { .bool($0) } ?? .null),
            .init("checked", .int(check.checked)),
            .init("lost", .int(check.lost)),
            .init("unchecked", .int(check.unchecked)),
            .init("lost_sample", check.sample.map { .string($0) } ?? .null),
            .init("ended", .object(s.outcomes.sorted { $0.key < $1.key }.map {
                .init($0.key, .object([.init("count", .int($0.value.count)), .init("sample_message", .string($0.value.sampleMessage))]))
            })),
            .init("passed", .bool(passed)),
        ])
    }
}
