public import NIOCore

/// Writes gRPC length-prefixed messages.
public enum MessageFramer {
    /// Appends `message` with its 5-byte prefix to `buffer`, gzip-compressed if asked.
    public static func frame(
        _ message: some ProtobufMessage, into buffer: inout ByteBuffer, compression: MessageEncoding? = nil
    ) {
        if compression == .gzip {
            var plain = ByteBufferAllocator().buffer(capacity: message.encodedSize)
            message.encode(into: &plain)
            var compressed = Gzip.compress(plain)
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(UInt32(compressed.readableBytes))
            buffer.writeBuffer(&compressed)
            return
        }
        buffer.writeInteger(UInt8(0))
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let start = buffer.writerIndex
        message.encode(into: &buffer)
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: lengthIndex)
    }

    /// Appends an already-encoded payload with its prefix.
    public static func frame(payload: ByteBuffer, compressed: Bool, into buffer: inout ByteBuffer) {
        var payload = payload
        buffer.writeInteger(UInt8(compressed ? 1 : 0))
        buffer.writeInteger(UInt32(payload.readableBytes))
        buffer.writeBuffer(&payload)
    }
}
