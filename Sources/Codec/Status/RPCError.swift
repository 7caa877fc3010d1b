/// The error an RPC ends with: a status code, a message safe to show the client, and optional
/// trailing metadata (e.g. `retry-after-ms` for RESOURCE_EXHAUSTED).
public struct RPCError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public var metadata: Metadata

    public init(_ code: StatusCode, _ message: String, metadata: Metadata = Metadata()) {
        self.code = code
        self.message = message
        self.metadata = metadata
    }

    public var description: String { "\(code.name): \(message)" }
}

/// A domain error that knows which gRPC status it is.
///
/// The server maps any thrown error to a status: `RPCError` as is, a conforming error through
/// `rpcError`, anything else to UNKNOWN with a generic message so internals never leak.
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}

extension RPCError: RPCErrorConvertible {
    public var rpcError: RPCError { self }
}
