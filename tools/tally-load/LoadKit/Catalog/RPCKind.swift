/// The four gRPC call shapes.
public enum RPCKind: String, Sendable, Hashable, CustomStringConvertible {
    case unary
    case clientStreaming = "client-streaming"
    case serverStreaming = "server-streaming"
    case bidirectionalStreaming = "bidi-streaming"

    public init(clientStreaming: Bool, serverStreaming: Bool) {
        switch (clientStreaming, serverStreaming) {
        case (false, false): self = .unary
        case (true, false): self = .clientStreaming
        case (false, true): self = .serverStreaming
        case (true, true): self = .bidirectionalStreaming
        }
    }

    public var sendsStream: Bool { self == .clientStreaming || self == .bidirectionalStreaming }
    public var receivesStream: Bool { self == .serverStreaming || self == .bidirectionalStreaming }

    public var description: String { rawValue }
}
