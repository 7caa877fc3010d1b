/// The four gRPC call shapes.
public enum RPCKind: Sendable, Hashable {
    case unary
    case clientStreaming
    case serverStreaming
    case bidirectionalStreaming

    /// Whether the client sends exactly one message.
    public var hasSingleRequest: Bool { self == .unary || self == .serverStreaming }
}
