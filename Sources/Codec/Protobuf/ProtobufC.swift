internal import CProtobufC
public import NIOCore

/// The calls every generated message makes into protobuf-c: unpack/free for decoding,
/// get_packed_size/pack for encoding, and conversions of C field values.
enum ProtobufC {
    /// Unpacks `bytes` with `descriptor`, converts the C struct to Swift with `convert`, and
    /// frees the C struct (its only owner) before returning.
    static func decode<M>(
        _ bytes: UnsafeRawBufferPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>, name: String,
        _ convert: (UnsafeMutableRawPointer) -> M
    ) throws(ProtobufError) -> M {
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard let message = protobuf_c_message_unpack(descriptor, nil, bytes.count, base ?? emptyInput) else {
            throw ProtobufError(messageName: name, reason: "invalid protobuf encoding")
        }
        defer { protobuf_c_message_free_unpacked(message, nil) }
        return convert(UnsafeMutableRawPointer(message))
    }

    /// Builds the C struct in a scratch arena and packs it straight into `buffer`.
    static func encode(into buffer: inout ByteBuffer, _ build: (ProtobufArena) -> UnsafeRawPointer) {
        let arena = ProtobufArena()
        let message = build(arena).assumingMemoryBound(to: ProtobufCMessage.self)
        let size = protobuf_c_message_get_packed_size(message)
        guard size > 0 else { return }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            protobuf_c_message_pack(message, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        withExtendedLifetime(arena) {}
    }

    static func encodedSize(_ build: (ProtobufArena) -> UnsafeRawPointer) -> Int {
        let arena = ProtobufArena()
        let size = protobuf_c_message_get_packed_size(build(arena).assumingMemoryBound(to: ProtobufCMessage.self))
        withExtendedLifetime(arena) {}
        return size
    }

    /// protobuf-c wants a non-NULL pointer even for zero bytes.
    private static var emptyInput: UnsafePointer<UInt8> { UnsafePointer(bitPattern: 1)! }

    /// A C string field as Swift; invalid UTF-8 is repaired, never trapped on.
    static func string(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer, pointer.pointee != 0 else { return "" }
        return String(cString: pointer)
    }

    static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        string(UnsafePointer(pointer))
    }

    static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let base = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }

    static func array<T>(_ pointer: UnsafeMutablePointer<T>?, count: Int) -> [T] {
        guard count > 0, let pointer else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }
}
