import Codec

/// The header blocks every gRPC response starts or ends with, built once.
enum ResponseHeaders {
    static let ok = okBlock(encoding: nil).frozen()
    static let okTrailers = HeaderBlock([("grpc-status", "0")]).frozen()

    /// `:status 200` response headers; `grpc-encoding` when responses are compressed.
    static func okBlock(encoding: MessageEncoding?) -> HeaderBlock {
        var block = HeaderBlock([
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-accept-encoding", "identity,gzip"),
        ])
        if let encoding { block.add("grpc-encoding", encoding.rawValue) }
        return block
    }
}
