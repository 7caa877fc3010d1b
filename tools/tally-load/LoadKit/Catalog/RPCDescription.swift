/// One RPC the load generator can drive: its path, call shape and message types.
public struct RPCDescription: Sendable, Hashable {
    /// `tally.v1.EventService/Track`.
    public var name: String
    /// `/tally.v1.EventService/Track`, the HTTP/2 `:path`.
    public var path: String
    public var kind: RPCKind
    /// Fully-qualified request message name.
    public var input: String
    /// Fully-qualified response message name.
    public var output: String

    public init(name: String, kind: RPCKind, input: String, output: String) {
        self.name = name
        self.path = "/" + name
        self.kind = kind
        self.input = input
        self.output = output
    }
}
