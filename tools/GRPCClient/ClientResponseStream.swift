import Codec
import NIOCore

/// The response message payloads of a call, as an `AsyncSequence` of byte arrays.
///
/// Ends when the call ends with OK; throws `CallError` after the last message otherwise.
/// One reader at a time.
public struct ClientResponseStream: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    public typealias Failure = any Error
    let call: ClientCall

    public struct AsyncIterator: AsyncIteratorProtocol {
        var payloads: PayloadIterator

        public mutating func next() async throws -> [UInt8]? {
            guard let payload = try await payloads.next() else { return nil }
            return Array(payload.readableBytesView)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(payloads: PayloadIterator(call: call)) }
}

/// The response messages of a call decoded as `Message`.
struct ClientMessageStream<Message: ProtobufMessage>: AsyncSequence, Sendable {
    typealias Element = Message
    typealias Failure = any Error
    let call: ClientCall

    struct AsyncIterator: AsyncIteratorProtocol {
        var payloads: PayloadIterator

        mutating func next() async throws -> Message? {
            guard let payload = try await payloads.next() else { return nil }
            do {
                return try Message(protobuf: payload)
            } catch {
                payloads.call.failDecoding(error)
                throw CallError(.internalError, "failed to decode the response: \(error.description)")
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(payloads: PayloadIterator(call: call)) }
}

/// Takes response payloads from the call a batch at a time (one loop hop per batch, not per
/// message) and returns them one by one.
struct PayloadIterator {
    let call: ClientCall
    private var batch: [ByteBuffer] = []
    private var index = 0
    private var ended = false

    init(call: ClientCall) {
        self.call = call
    }

    mutating func next() async throws -> ByteBuffer? {
        if index < batch.count {
            defer { index += 1 }
            return batch[index]
        }
        guard !ended else { return nil }
        batch = try await call.nextBatch()
        if batch.isEmpty {
            ended = true
            return nil
        }
        index = 1
        return batch[0]
    }
}
