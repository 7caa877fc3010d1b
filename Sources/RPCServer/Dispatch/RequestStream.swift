public import Codec
import NIOCore

/// The request messages of a client- or bidi-streaming call, in order.
///
/// Each `next()` takes one message off the stream and returns its flow-control credit to the
/// client, so a slow handler slows the client down instead of buffering without bound.
public struct RequestStream<Message: ProtobufMessage>: AsyncSequence {
    public typealias Element = Message
    let call: any RPCCall

    public struct AsyncIterator: AsyncIteratorProtocol {
        let call: any RPCCall

        public mutating func next() async throws -> Message? {
            guard let payload = try await call.receive() else { return nil }
            return try Message.decodeRequest(payload)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(call: call) }
}

extension ProtobufMessage {
    /// Decodes a request; bytes that do not parse are INTERNAL, as the gRPC spec says for a
    /// message the server cannot deserialize.
    static func decodeRequest(_ payload: ByteBuffer) throws(RPCError) -> Self {
        do {
            return try Self(protobuf: payload)
        } catch {
            throw RPCError(.internalError, "grpc: error unmarshalling request: \(error.description)")
        }
    }
}
