/// Where notifications go, behind one small protocol: `LogSink` (in process) and
/// `WebhookSink` (signed JSON over HTTP) implement it.
///
/// Delivery is at least once: a worker killed mid-send sends again after its lease, so a sink
/// deduplicates on the message id.
public protocol NotificationSink: Sendable {
    /// For logs, e.g. "log", "webhook".
    var name: String { get }

    /// Sends once; never throws: every failure is an outcome.
    func deliver(_ message: NotificationMessage, attempt: Int) async -> SinkOutcome

    /// Releases connections (HTTP client) at shutdown.
    func shutdown() async
}

/// What one send came to.
public enum SinkOutcome: Sendable, Hashable {
    case delivered
    /// The sink asks to hear nothing for this destination for a while (429); nil: it did not
    /// say how long. Not a failed attempt.
    case throttled(retryAfter: Duration?)
    /// Failed for now (5xx, timeout, connection error): retried with backoff.
    case retryable(reason: String)
    /// Refused for good (4xx but 429): dead at once.
    case rejected(reason: String)
}
