public import NIOCore

/// Which sink receives notifications (`NOTIFY_SINK`).
public enum NotificationSinkChoice: Sendable, Hashable {
    /// Logs each message at info and counts it delivered (the default: nothing to set up).
    case log
    /// POSTs each message to `url`, signed with `secret` (`NOTIFY_WEBHOOK_URL`,
    /// `NOTIFY_WEBHOOK_SECRET`, `NOTIFY_WEBHOOK_TIMEOUT_MS`).
    case webhook(url: String, secret: String, timeout: Duration)

    /// "log" or "webhook", for stats.
    public var name: String {
        switch self {
        case .log: "log"
        case .webhook: "webhook"
        }
    }

    /// How long one send may take.
    var timeout: Duration {
        switch self {
        case .log: .seconds(1)
        case .webhook(_, _, let timeout): timeout
        }
    }

    public func make(group: any EventLoopGroup) -> any NotificationSink {
        switch self {
        case .log: LogSink()
        case .webhook(let url, let secret, let timeout): WebhookSink(url: url, secret: secret, timeout: timeout, eventLoopGroup: group)
        }
    }
}
