/// Why a Redis command failed.
public struct RedisError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Redis could not be reached, or the connection was lost (the command may or may
        /// not have run: only retry idempotent work).
        case unavailable
        /// No reply within the command timeout; the connection was reset.
        case timeout
        /// Redis answered with an error reply (e.g. `WRONGTYPE`, a script's `error_reply`).
        case server
        /// The reply did not have the shape the caller expected.
        case unexpectedReply
        /// The client was shut down.
        case shutdown
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "redis \(kind): \(message)" }

    /// True for the `NOSCRIPT` reply: the script cache was flushed (e.g. Redis restarted).
    var isNoScript: Bool { kind == .server && message.hasPrefix("NOSCRIPT") }
}
