internal import CProtobufC
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The calls every generated message makes into protobuf-c: unpack/free for decoding,
/// get_packed_size/pack for encoding, and conversions of C field values.
///
/// Both directions work in stack scratch first (the unpacked struct through a bump
/// allocator handed to protobuf-c, the struct to pack through `ProtobufArena`), so small
/// messages such as the Echo benchmark's cost no heap allocation beyond the Swift values.
enum ProtobufC {
    /// Stack scratch per encode or decode; larger messages spill to the heap.
    static let scratchSize = 1024

    /// Unpacks `bytes` with `descriptor`, converts the C struct to Swift with `convert`, and
    /// frees the C struct (its only owner) before returning.
    static func decode<M>(
        _ bytes: UnsafeRawBufferPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>, name: String,
        _ convert: (UnsafeRawPointer) -> M
    ) throws(ProtobufError) -> M {
        let input = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptyInput
        let decoded: M? = withUnsafeTemporaryAllocation(byteCount: scratchSize, alignment: 16) { scratch in
            var state = DecodeScratch(start: scratch.baseAddress!, count: scratch.count)
            return withUnsafeMutablePointer(to: &state) { state in
                var allocator = ProtobufCAllocator(alloc: scratchAlloc, free: scratchFree, allocator_data: state)
                guard let message = protobuf_c_message_unpack(descriptor, &allocator, bytes.count, input) else {
                    return nil
                }
                defer { protobuf_c_message_free_unpacked(message, &allocator) }
                return convert(UnsafeRawPointer(message))
            }
        }
        guard let decoded else { throw ProtobufError(messageName: name, reason: "invalid protobuf encoding") }
        return decoded
    }

    /// Builds the C struct in a scratch arena and packs it straight into `buffer`.
    static func encode(into buffer: inout ByteBuffer, _ build: (inout ProtobufArena) -> UnsafeRawPointer) {
        withUnsafeTemporaryAllocation(byteCount: scratchSize, alignment: 16) { scratch in
            var arena = ProtobufArena(scratch: scratch)
            let message = build(&arena).assumingMemoryBound(to: ProtobufCMessage.self)
            let size = protobuf_c_message_get_packed_size(message)
            guard size > 0 else { return }
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                protobuf_c_message_pack(message, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    static func encodedSize(_ build: (inout ProtobufArena) -> UnsafeRawPointer) -> Int {
        withUnsafeTemporaryAllocation(byteCount: scratchSize, alignment: 16) { scratch in
            var arena = ProtobufArena(scratch: scratch)
            return protobuf_c_message_get_packed_size(build(&arena).assumingMemoryBound(to: ProtobufCMessage.self))
        }
    }

    /// protobuf-c wants a non-NULL pointer even for zero bytes.
    private static var emptyInput: UnsafePointer<UInt8> { UnsafePointer(bitPattern: 1)! }

    /// A C string field as Swift; invalid UTF-8 is repaired (U+FFFD), never trapped on.
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

/// The bump region protobuf-c unpacks into; what does not fit comes from malloc.
private struct DecodeScratch {
    var cursor: Int
    let start: Int
    let end: Int

    init(start: UnsafeMutableRawPointer, count: Int) {
        self.start = Int(bitPattern: start)
        self.cursor = self.start
        self.end = self.start + count
    }
}

private func scratchAlloc(_ data: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    let state = data!.assumingMemoryBound(to: DecodeScratch.self)
    let aligned = (state.pointee.cursor + 15) & ~15
    if size <= state.pointee.end - aligned {
        state.pointee.cursor = aligned + size
        return UnsafeMutableRawPointer(bitPattern: aligned)
    }
    return malloc(size)
}

/// Scratch memory is released with the scratch itself; only spilled blocks are freed here.
private func scratchFree(_ data: UnsafeMutableRawPointer?, _ pointer: UnsafeMutableRawPointer?) {
    guard let pointer else { return }
    let state = data!.assumingMemoryBound(to: DecodeScratch.self)
    let address = Int(bitPattern: pointer)
    if address >= state.pointee.start && address < state.pointee.end { return }
    free(pointer)
}
