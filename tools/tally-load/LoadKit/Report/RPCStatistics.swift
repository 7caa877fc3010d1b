public import Histogram

/// What one RPC's calls did: outcomes by status, latency, messages and bytes. Built per
/// connection without sharing, then merged.
public struct RPCStatistics: Sendable {
    /// How many calls ended with one status, and the first message seen with it.
    public struct StatusTally: Sendable, Hashable {
        public var count: Int
        public var sampleMessage: String
    }

    /// Status key of streams tally-load ended itself (after `--stream-messages` responses, or
    /// at the end of a timed run): a success, not an error.
    public static let endedByClient = "ENDED_BY_CLIENT"

    public var calls = 0
    public var statuses: [String: StatusTally] = [:]
    /// Call latency in nanoseconds (whole stream for streaming calls).
    public var latency = Self.latencyHistogram()
    /// Exact sum, for an exact mean (the histogram rounds to 3 significant digits).
    public var latencySum: UInt64 = 0
    /// Open loop: how late calls were sent after their scheduled time (the client's own
    /// queueing and request building, up to the moment a unary call's HEADERS frame went to
    /// the socket, which the latency above includes and a tool timing from the actual send
    /// does not). Sum (for the mean) and worst, in nanoseconds; zero in a closed loop.
    public var sendDelaySum: UInt64 = 0
    public var sendDelayMax: UInt64 = 0
    public var messagesSent = 0
    public var messagesReceived = 0
    /// gRPC message bytes including the 5-byte prefixes, excluding HTTP/2 framing and headers.
    public var bytesSent = 0
    public var bytesReceived = 0
    /// Calls that sent an earlier call's request again (`--retry-share`), and those among
    /// them sent while that earlier call was still waiting for its answer.
    public var resent = 0
    public var resentWhileOriginalInFlight = 0
    /// OK responses whose counted field (`--count-field`, `replayed` by default) was set.
    public var flagged = 0

    /// 100 s; slower calls are recorded as 100 s in the histogram (the mean stays exact).
    public static let maxLatency: UInt64 = 100_000_000_000

    public init() {}

    /// An empty latency histogram in nanoseconds: 1 ns to `maxLatency`, 3 significant digits.
    static func latencyHistogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: maxLatency, numberOfSignificantValueDigits: .three)
    }

    public var errors: Int {
        statuses.reduce(0) { $0 + (Self.isSuccess($1.key) ? 0 : $1.value.count) }
    }

    public static func isSuccess(_ status: String) -> Bool { status == "OK" || status == endedByClient }

    public mutating func record(_ outcome: CallOutcome, latency nanoseconds: UInt64, sendDelay: UInt64 = 0) {
        calls += 1
        sendDelaySum &+= sendDelay
        sendDelayMax = max(sendDelayMax, sendDelay)
        // One hash lookup per call; the first message seen with a status is its sample.
        statuses[outcome.status, default: StatusTally(count: 0, sampleMessage: outcome.message)].count += 1
        _ = latency.record(min(max(nanoseconds, 1), Self.maxLatency))
        latencySum &+= nanoseconds
        messagesSent += outcome.messagesSent
        messagesReceived += outcome.messagesReceived
        bytesSent += outcome.bytesSent
        bytesReceived += outcome.bytesReceived
        if let resend = outcome.resend {
            resent += 1
            if resend == .whileOriginalInFlight { resentWhileOriginalInFlight += 1 }
        }
        if outcome.flagSet { flagged += 1 }
    }

    public mutating func merge(_ other: RPCStatistics) {
        calls += other.calls
        for (status, tally) in other.statuses {
            if let existing = statuses[status] {
                statuses[status] = StatusTally(count: existing.count + tally.count, sampleMessage: existing.sampleMessage)
            } else {
                statuses[status] = tally
            }
        }
        latency.add(other.latency)
        latencySum &+= other.latencySum
        sendDelaySum &+= other.sendDelaySum
        sendDelayMax = max(sendDelayMax, other.sendDelayMax)
        messagesSent += other.messagesSent
        messagesReceived += other.messagesReceived
        bytesSent += other.bytesSent
        bytesReceived += other.bytesReceived
        resent += other.resent
        resentWhileOriginalInFlight += other.resentWhileOriginalInFlight
        flagged += other.flagged
    }

    /// Mean call latency in nanoseconds (exact).
    public var meanLatency: Double { calls == 0 ? 0 : Double(latencySum) / Double(calls) }

    /// Mean send delay in nanoseconds (exact); `meanLatency` minus this is the mean time from
    /// the actual send to the end of the call, as h2load and ghz time it.
    public var meanSendDelay: Double { calls == 0 ? 0 : Double(sendDelaySum) / Double(calls) }
}

/// How one call ended, as the worker saw it.
public struct CallOutcome: Sendable {
    /// How a retry (`--retry-share`) stood to the call whose request it sent again.
    public enum Resend: Sendable, Hashable {
        case afterOriginal
        case whileOriginalInFlight
    }

    /// `OK`, a gRPC status name, or `RPCStatistics.endedByClient`.
    public var status: String
    public var message: String
    public var messagesSent: Int
    public var messagesReceived: Int
    public var bytesSent: Int
    public var bytesReceived: Int
    /// Set when the call sent an earlier call's request again.
    public var resend: Resend?
    /// Set when the response's counted field was true.
    public var flagSet = false

    public init(status: String, message: String = "", messagesSent: Int = 0, messagesReceived: Int = 0, bytesSent: Int = 0, bytesReceived: Int = 0) {
        self.status = status
        self.message = message
        self.messagesSent = messagesSent
        self.messagesReceived = messagesReceived
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
    }
}
