internal import CProtobufC

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Scratch memory for building protobuf-c structs while encoding one message: bump
/// allocation from caller-provided (stack) scratch, then from heap blocks once that is used
/// up, all freed together when the arena goes away.
///
/// Strings, byte fields, arrays and nested structs of the message being packed live here, so
/// a typical message costs no heap allocation at all and a large one a few blocks.
struct ProtobufArena: ~Copyable {
    private var cursor: UnsafeMutableRawPointer
    private var end: UnsafeMutableRawPointer
    /// Heap blocks, linked through their first word, newest first.
    private var heapBlocks: UnsafeMutableRawPointer?
    private static let heapBlockSize = 16 * 1024
    private static let linkSize = 16

    /// An arena that hands out `scratch` first; `scratch` must outlive the arena.
    init(scratch: UnsafeMutableRawBufferPointer) {
        cursor = scratch.baseAddress!
        end = scratch.baseAddress! + scratch.count
    }

    deinit {
        var block = heapBlocks
        while let current = block {
            block = current.load(as: UnsafeMutableRawPointer?.self)
            free(current)
        }
    }

    mutating func allocateRaw(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let aligned = (Int(bitPattern: cursor) + alignment - 1) & ~(alignment - 1)
        if aligned + byteCount <= Int(bitPattern: end) {
            let result = UnsafeMutableRawPointer(bitPattern: aligned)!
            cursor = result + byteCount
            return result
        }
        // A large field gets a block of its own so the remaining block space stays usable.
        let size = max(Self.heapBlockSize, byteCount + alignment + Self.linkSize)
        guard let block = malloc(size) else { fatalError("out of memory encoding a protobuf message") }
        block.storeBytes(of: heapBlocks, as: UnsafeMutableRawPointer?.self)
        heapBlocks = block
        let start = (Int(bitPattern: block) + Self.linkSize + alignment - 1) & ~(alignment - 1)
        let result = UnsafeMutableRawPointer(bitPattern: start)!
        if size == Self.heapBlockSize {
            cursor = result + byteCount
            end = block + size
        }
        return result
    }

    mutating func allocate<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        allocateRaw(byteCount: MemoryLayout<T>.stride, alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: 1)
    }

    /// Memory for `count` values; the caller initializes every element.
    mutating func allocateArray<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        allocateRaw(byteCount: MemoryLayout<T>.stride * max(1, count), alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: max(1, count))
    }

    /// A NUL-terminated copy of `string` (protobuf-c measures strings with strlen, so an
    /// embedded NUL ends the string on the wire).
    mutating func string(_ string: String) -> UnsafeMutablePointer<CChar> {
        var string = string
        return string.withUTF8 { utf8 in
            let memory = allocateArray(CChar.self, count: utf8.count + 1)
            if utf8.count > 0 {
                UnsafeMutableRawPointer(memory).copyMemory(from: utf8.baseAddress!, byteCount: utf8.count)
            }
            memory[utf8.count] = 0
            return memory
        }
    }

    mutating func bytes(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        let memory = copyArray(bytes)
        return ProtobufCBinaryData(len: bytes.count, data: memory)
    }

    mutating func copyArray<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let memory = allocateArray(T.self, count: values.count)
        values.withUnsafeBufferPointer { source in
            if source.count > 0 { memory.initialize(from: source.baseAddress!, count: source.count) }
        }
        return memory
    }
}
