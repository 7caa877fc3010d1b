import Units

/// The human report of a presence load.
extension PresenceResult {
    public func textReport() -> String {
        let c = configuration
        let s = statistics
        typealias F = LoadResult
        var lines: [String] = []
        lines.append(
            "Presence: \(c.streams) streams (users \(c.firstUser)..<\(c.firstUser + c.streams) of \(c.users)), "
                + "\(c.streamsPerConnection) per connection, \(c.targets.count) target\(c.targets.count == 1 ? "" : "s"), "
                + "\(c.subscriptions) subscriptions each, \(F.number(c.changesPerSecond)) changes/s for \(F.fixed(Double(c.duration.nanoseconds) / 1e9, 1)) s")
        lines.append("  Streams:   \(openStreams) open after \(F.fixed(openSeconds, 1)) s, \(c.streams - openStreams) not open")
        lines.append(
            "  Sent:      \(changesSent) status changes (\(F.number(rate(changesSent)))/s), \(s.heartbeatsSent) heartbeats")
        lines.append(
            "  Received:  \(messagesDuringChanges) messages (\(F.number(rate(messagesDuringChanges)))/s), "
                + "\(changesReceivedDuringChanges) user states (\(F.number(rate(changesReceivedDuringChanges)))/s) while changes were sent")
        lines.append("")
        lines.append(
            "Delivery latency (ms), \(s.measured) deliveries measured (send to receipt; a state replaced before it was sent is "
                + "coalesced away and not measured, \(s.repeats) states received again not counted):")
        if s.measured > 0 {
            lines.append("  " + F.latencyLine(s.latency, mean: s.meanLatency, digits: 1))
            let bar = c.bar.nanoseconds / 1_000_000
            lines.append("  bar: p99 <= interval + 100 ms = \(bar) ms: \(meetsBar == true ? "met" : "MISSED")")
            if s.clockSteps > 0 { lines.append("  \(s.clockSteps) deliveries arrived before their send time (the wall clock stepped)") }
        }
        lines.append("")
        lines.append(
            "Lost changes: \(check.lost) of \(check.checked) subscriptions checked \(F.fixed(Double(c.settle.nanoseconds) / 1e9, 1)) s after the last change "
                + "(last received == last sent), \(check.unchecked) not checked")
        if let sample = check.sample { lines.append("  e.g. \(sample)") }
        lines.append("")
        lines.append("Streams ended:")
        for (status, tally) in s.outcomes.sorted(by: { $0.value.count > $1.value.count }) {
            let sample = tally.sampleMessage.isEmpty ? "" : "  \"\(F.excerpt(tally.sampleMessage))\""
            lines.append("  \(F.pad(status, 24)) \(F.pad(String(tally.count), 10, right: true))\(sample)")
        }
        return lines.joined(separator: "\n")
    }
}
