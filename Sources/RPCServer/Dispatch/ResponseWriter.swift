public import Codec

/// Sends the response messages of a server- or bidi-streaming call.
public struct ResponseWriter<Message: ProtobufMessage>: Sendable {
    let call: any RPCCall

    /// Sends one message; suspends while the client is not reading fast enough.
    public func write(_ message: Message) async throws {
        try await call.send(message)
    }

    /// Sends metadata with the response headers; only effective before the first write.
    public func setInitialMetadata(_ metadata: Metadata) {
        call.setInitialMetadata(metadata)
    }
}
