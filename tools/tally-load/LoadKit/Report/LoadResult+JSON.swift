import Histogram

/// The machine-readable report (`--format json`): the same numbers as the text report,
/// latencies in milliseconds.
extension LoadResult {
    public func jsonReport(maxErrorRate: Double? = nil) -> JSONValue {
        var members: [JSONValue.Member] = [
            .init("elapsed_seconds", .double(elapsed, digits: 6)),
            .init("connections", .int(connections)),
            .init("concurrency", .int(concurrency)),
            .init("target_rate", targetRate.map { .double($0) } ?? .null),
            .init("counted_field", countedField.map { .string($0) } ?? .null),
            .init("total", Self.json(total, rate: rate)),
            .init("rpcs", .array(rpcs.map { rpc in
                var fields: [JSONValue.Member] = [.init("rpc", .string(rpc.rpc.name)), .init("kind", .string(rpc.rpc.kind.rawValue))]
                if case .object(let rest) = Self.json(rpc.statistics, rate: rate) { fields += rest }
                return .object(fields)
            })),
            .init("error_rate", .double(errorRate, digits: 6)),
        ]
        if let maxErrorRate {
            members.append(.init("max_error_rate", .double(maxErrorRate, digits: 6)))
            members.append(.init("passed", .bool(errorRate <= maxErrorRate)))
        }
        return .object(members)
    }

    /// Mean, min, p50, p90, p99, p99.9 and max of a latency histogram in nanoseconds, as
    /// milliseconds (the presence report's too).
    static func percentiles(_ h: Histogram<UInt64>, mean: Double) -> [JSONValue.Member] {
        func ms(_ nanoseconds: UInt64) -> JSONValue { .double(Double(nanoseconds) / 1e6, digits: 6) }
        return [
            .init("mean", .double(mean / 1e6, digits: 6)), .init("min", ms(h.min)), .init("p50", ms(h.valueAtPercentile(50))),
            .init("p90", ms(h.valueAtPercentile(90))), .init("p99", ms(h.valueAtPercentile(99))),
            .init("p99_9", ms(h.valueAtPercentile(99.9))), .init("max", ms(h.max)),
        ]
    }

    static func json(_ statistics: RPCStatistics, rate: (Int) -> Double) -> JSONValue {
        let h = statistics.latency
        func ms(_ nanoseconds: UInt64) -> JSONValue { .double(Double(nanoseconds) / 1e6, digits: 6) }
        let latency: JSONValue =
            statistics.calls == 0
            ? .null
            : .object(percentiles(h, mean: statistics.meanLatency) + [
                // Open loop: the mean lateness of sends behind schedule (included above), and
                // the mean from the actual send (how h2load and ghz time a call).
                .init("send_delay_mean", .double(statistics.meanSendDelay / 1e6, digits: 6)),
                .init("send_delay_max", ms(statistics.sendDelayMax)),
                .init("from_send_mean", .double((statistics.meanLatency - statistics.meanSendDelay) / 1e6, digits: 6)),
                .init("histogram", .array(histogramBuckets(statistics).map {
                    .object([.init("le_ms", ms($0.upperBound)), .init("count", .int($0.count))])
                })),
            ])
        return .object([
            .init("calls", .int(statistics.calls)),
            .init("calls_per_second", .double(rate(statistics.calls))),
            .init("errors", .int(statistics.errors)),
            .init("messages_sent", .int(statistics.messagesSent)),
            .init("messages_received", .int(statistics.messagesReceived)),
            .init("messages_sent_per_second", .double(rate(statistics.messagesSent))),
            .init("messages_received_per_second", .double(rate(statistics.messagesReceived))),
            .init("bytes_sent", .int(statistics.bytesSent)),
            .init("bytes_received", .int(statistics.bytesReceived)),
            .init("resent", .int(statistics.resent)),
            .init("resent_while_original_in_flight", .int(statistics.resentWhileOriginalInFlight)),
            .init("counted_field_set", .int(statistics.flagged)),
            .init("latency_ms", latency),
            .init("status", .object(statistics.statuses.sorted { $0.key < $1.key }.map {
                .init($0.key, .object([.init("count", .int($0.value.count)), .init("sample_message", .string($0.value.sampleMessage))]))
            })),
        ])
    }
}
