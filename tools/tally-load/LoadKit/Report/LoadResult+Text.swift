import Histogram

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The human report: totals, latency percentiles and a histogram, status codes with a sample
/// message each, and one line per RPC when a scenario mixed several.
extension LoadResult {
    public func textReport() -> String {
        let total = self.total
        var lines: [String] = []
        let mode = targetRate.map { "open loop at \(Self.number($0)) calls/s" } ?? "closed loop"
        let what = rpcs.count == 1 ? rpcs[0].rpc.name + " (\(rpcs[0].rpc.kind))" : "scenario of \(rpcs.count) RPCs"
        lines.append("Summary: \(what), \(connections) connection\(connections == 1 ? "" : "s"), \(concurrency) in flight, \(mode)")
        let errorShare = total.calls == 0 ? 0 : 100 * Double(total.errors) / Double(total.calls)
        lines.append(
            "  Calls:     \(total.calls) in \(Self.fixed(elapsed, 2)) s = \(Self.number(rate(total.calls)))/s"
                + "   errors \(total.errors) (\(Self.fixed(errorShare, 2))%)")
        lines.append(
            "  Messages:  sent \(total.messagesSent) (\(Self.number(rate(total.messagesSent)))/s), received \(total.messagesReceived) (\(Self.number(rate(total.messagesReceived)))/s)"
        )
        lines.append(
            "  Bytes:     sent \(Self.bytes(total.bytesSent)) (\(Self.bytes(Int(rate(total.bytesSent))))/s), received \(Self.bytes(total.bytesReceived)) (\(Self.bytes(Int(rate(total.bytesReceived))))/s)"
        )
        if total.resent > 0 {
            lines.append("  Retries:   \(total.resent) resent an earlier request, \(total.resentWhileOriginalInFlight) of them while it was in flight")
        }
        if let countedField, total.flagged > 0 || total.resent > 0 {
            lines.append("  Counted:   \(total.flagged) responses with \(countedField) set")
        }
        if total.calls > 0 {
            lines.append("")
            lines.append("Latency (ms): " + Self.latencyLine(total))
            if total.sendDelayMax > 0 {
                lines.append(
                    "  from the scheduled send; sends ran late by \(Self.fixed(total.meanSendDelay / 1e6, 3)) ms on average (max \(Self.fixed(Double(total.sendDelayMax) / 1e6, 3))),"
                        + " so from the actual send the mean is \(Self.fixed((total.meanLatency - total.meanSendDelay) / 1e6, 3)) ms")
            }
            lines.append("")
            lines.append(contentsOf: Self.histogramLines(total))
        }
        lines.append("")
        lines.append("Status codes:")
        for (status, tally) in total.statuses.sorted(by: { $0.value.count > $1.value.count }) {
            let sample = tally.sampleMessage.isEmpty ? "" : "  \"\(Self.excerpt(tally.sampleMessage))\""
            lines.append("  \(Self.pad(status, 24)) \(Self.pad(String(tally.count), 10, right: true))\(sample)")
        }
        if rpcs.count > 1 {
            lines.append("")
            lines.append("Per RPC:")
            lines.append("  \(Self.pad("rpc", 48)) \(Self.pad("calls", 9, right: true)) \(Self.pad("calls/s", 10, right: true)) \(Self.pad("errors", 8, right: true)) \(Self.pad("mean ms", 8, right: true)) \(Self.pad("p99 ms", 8, right: true))")
            for rpc in rpcs {
                let s = rpc.statistics
                lines.append(
                    "  \(Self.pad(rpc.rpc.name, 48)) \(Self.pad(String(s.calls), 9, right: true)) \(Self.pad(Self.number(rate(s.calls)), 10, right: true)) \(Self.pad(String(s.errors), 8, right: true)) \(Self.pad(Self.fixed(s.meanLatency / 1e6, 3), 8, right: true)) \(Self.pad(Self.fixed(Double(s.latency.valueAtPercentile(99)) / 1e6, 3), 8, right: true))"
                )
            }
        }
        return lines.joined(separator: "\n")
    }

    static func latencyLine(_ statistics: RPCStatistics) -> String {
        latencyLine(statistics.latency, mean: statistics.meanLatency)
    }

    /// Mean, min and percentiles of a latency histogram in nanoseconds, as milliseconds.
    static func latencyLine(_ h: Histogram<UInt64>, mean: Double, digits: Int = 3) -> String {
        func ms(_ nanoseconds: UInt64) -> String { fixed(Double(nanoseconds) / 1e6, digits) }
        return "mean \(fixed(mean / 1e6, digits))  min \(ms(h.min))  p50 \(ms(h.valueAtPercentile(50)))  "
            + "p90 \(ms(h.valueAtPercentile(90)))  p99 \(ms(h.valueAtPercentile(99)))  p99.9 \(ms(h.valueAtPercentile(99.9)))  max \(ms(h.max))"
    }

    /// Ten buckets, logarithmic from the fastest to the slowest call.
    static func histogramLines(_ statistics: RPCStatistics) -> [String] {
        let buckets = histogramBuckets(statistics)
        let largest = buckets.map(\.count).max() ?? 1
        return buckets.map { bucket in
            let bar = String(repeating: "#", count: largest == 0 ? 0 : Int((40 * Double(bucket.count) / Double(largest)).rounded(.up)))
            return "  <= \(pad(fixed(Double(bucket.upperBound) / 1e6, 3), 10, right: true)) ms  \(pad(String(bucket.count), 10, right: true))  \(bar)"
        }
    }

    static func histogramBuckets(_ statistics: RPCStatistics) -> [(upperBound: UInt64, count: UInt64)] {
        let h = statistics.latency
        guard h.totalCount > 0 else { return [] }
        let low = Double(max(h.min, 1))
        let high = Double(max(h.max, h.min + 1))
        var result: [(upperBound: UInt64, count: UInt64)] = []
        var lower: UInt64 = 0
        for step in 1...10 {
            let upper = step == 10 ? UInt64.max : UInt64(low * Foundationless.power(high / low, Double(step) / 10))
            let count = h.count(within: lower...min(upper, RPCStatistics.maxLatency))
            result.append((step == 10 ? h.max : upper, count))
            lower = upper &+ 1
            if lower > RPCStatistics.maxLatency { break }
        }
        return result
    }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64((abs(value) * scale).rounded())
        let whole = scaled / Int64(scale)
        let fraction = scaled % Int64(scale)
        let sign = value < 0 && scaled != 0 ? "-" : ""
        if digits == 0 { return "\(sign)\(whole)" }
        let text = String(fraction)
        return "\(sign)\(whole).\(String(repeating: "0", count: digits - text.count))\(text)"
    }

    /// A rate with one decimal below 100, none above.
    static func number(_ value: Double) -> String { value < 100 ? fixed(value, 1) : fixed(value, 0) }

    static func bytes(_ count: Int) -> String {
        let value = Double(count)
        if value >= 1e9 { return fixed(value / 1e9, 2) + " GB" }
        if value >= 1e6 { return fixed(value / 1e6, 2) + " MB" }
        if value >= 1e3 { return fixed(value / 1e3, 1) + " kB" }
        return "\(count) B"
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }

    static func excerpt(_ text: String) -> String { text.count > 100 ? String(text.prefix(97)) + "..." : text }
}

/// `pow` without Foundation.
enum Foundationless {
    static func power(_ base: Double, _ exponent: Double) -> Double {
        guard base > 0 else { return 0 }
        return exp(exponent * log(base))
    }
}
