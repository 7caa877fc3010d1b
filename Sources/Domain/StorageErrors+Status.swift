public import Storage
public import Codec

// The one mapping from the storage engines' errors to gRPC statuses (the engines know nothing
// of gRPC). Clients see what kind of dependency failed, never SQL, Redis' own messages or
// server internals; logs keep the engines' full descriptions.

extension PostgresError: RPCErrorConvertible {
    /// One precise status per failure; the message names the kind of failure only.
    public var rpcError: RPCError {
        switch code {
        case .poolTimeout: return RPCError(.unavailable, message)  // the pool's own text: sizes, no SQL
        case .poolClosed: return RPCError(.unavailable, "database pool is shutting down")
        case .connectionFailed, .connectionLost: return RPCError(.unavailable, "database unavailable")
        case .statementTimeout: return RPCError(.deadlineExceeded, "database statement exceeded its deadline")
        case .cancelled: return RPCError(.cancelled, "database statement cancelled")
        case .server:
            switch sqlState {
            case "23505": return RPCError(.alreadyExists, "already exists")
            case "40001", "40P01": return RPCError(.aborted, "database transaction conflict, retry")
            case "57014": return RPCError(.deadlineExceeded, "database statement exceeded its deadline")
            case "53300", "57P01", "57P02", "57P03": return RPCError(.unavailable, "database unavailable")
            case let state? where state.hasPrefix("08"): return RPCError(.unavailable, "database unavailable")
            default: return RPCError(.internalError, "database error")
            }
        default: return RPCError(.internalError, "database error")  // decoding, configuration, misuse
        }
    }
}

extension RedisError: RPCErrorConvertible {
    /// Clients see that a dependency is down or slow, never Redis' own messages.
    public var rpcError: RPCError {
        switch kind {
        case .unavailable, .shutdown: RPCError(.unavailable, "storage temporarily unavailable")
        case .timeout: RPCError(.unavailable, "storage did not answer in time")
        case .server, .unexpectedReply: RPCError(.internalError, "internal storage error")
        }
    }
}

extension RateLimitDecision {
    /// RESOURCE_EXHAUSTED with `retry-after-ms` (and `x-ratelimit-remaining`) metadata.
    public func rejection(_ message: String) -> RPCError {
        var metadata = Metadata()
        metadata.add("retry-after-ms", String(max(1, retryAfter.milliseconds)))
        metadata.add("x-ratelimit-remaining", String(remaining))
        return RPCError(.resourceExhausted, message, metadata: metadata)
    }
}
