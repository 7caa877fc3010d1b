public import NIOCore

/// A protobuf message type generated from `proto/` (see tools/codegen).
///
/// Values are plain Swift structs; encoding and decoding go through protobuf-c, so the wire
/// format is exactly protobuf-c's. Decoding never traps on hostile input: malformed bytes
/// throw `ProtobufError`.
public protocol ProtobufMessage: Sendable, Hashable {
    /// The fully qualified protobuf name, e.g. `tally.v1.TrackRequest`.
    static var protoName: String { get }

    /// The message with every field at its default value.
    init()

    /// Decodes a message from its protobuf encoding.
    init(protobuf bytes: UnsafeRawBufferPointer) throws(ProtobufError)

    /// Appends the protobuf encoding of the message to `buffer`.
    func encode(into buffer: inout ByteBuffer)

    /// The exact number of bytes `encode(into:)` appends.
    var encodedSize: Int { get }
}

extension ProtobufMessage {
    /// Decodes a message from the readable bytes of `buffer` (the buffer is not moved).
    @inlinable
    public init(protobuf buffer: ByteBuffer) throws(ProtobufError) {
        let result: Result<Self, ProtobufError> = buffer.withUnsafeReadableBytes { bytes in
            do throws(ProtobufError) { return .success(try Self(protobuf: bytes)) } catch { return .failure(error) }
        }
        self = try result.get()
    }

    /// Decodes a message from a byte array.
    @inlinable
    public init(protobuf bytes: [UInt8]) throws(ProtobufError) {
        let result: Result<Self, ProtobufError> = bytes.withUnsafeBytes { raw in
            do throws(ProtobufError) { return .success(try Self(protobuf: raw)) } catch { return .failure(error) }
        }
        self = try result.get()
    }

    /// The protobuf encoding as a byte array.
    public func encodedBytes() -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: encodedSize)
        encode(into: &buffer)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }
}

/// Why bytes could not be decoded as a protobuf message.
public struct ProtobufError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The message type that failed to decode.
    public var messageName: String
    /// What went wrong, safe to show to a client.
    public var reason: String

    public init(messageName: String, reason: String) {
        self.messageName = messageName
        self.reason = reason
    }

    public var description: String { "cannot decode \(messageName): \(reason)" }
}
