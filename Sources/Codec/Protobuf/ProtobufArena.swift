internal import CProtobufC

/// Scratch memory for building protobuf-c structs while encoding one message: bump
/// allocation from a few blocks, all freed together when the arena goes away.
///
/// Strings, byte fields, arrays and nested structs of the message being packed live here, so
/// encoding costs a couple of allocations however many fields the message has.
final class ProtobufArena {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private static let blockSize = 4096

    deinit {
        for block in blocks { block.deallocate() }
    }

    func allocateRaw(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        if let cursor {
            let misalignment = Int(bitPattern: cursor) & (alignment - 1)
            let padding = misalignment == 0 ? 0 : alignment - misalignment
            if padding + byteCount <= remaining {
                let result = cursor + padding
                self.cursor = result + byteCount
                remaining -= padding + byteCount
                return result
            }
        }
        let size = max(Self.blockSize, byteCount + alignment)
        let block = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        blocks.append(block)
        cursor = block + byteCount
        remaining = size - byteCount
        return block
    }

    func allocate<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        allocateRaw(byteCount: MemoryLayout<T>.stride, alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: 1)
    }

    func allocateArray<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        allocateRaw(byteCount: MemoryLayout<T>.stride * max(1, count), alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: max(1, count))
    }

    /// A NUL-terminated copy of `string`.
    func string(_ string: String) -> UnsafeMutablePointer<CChar> {
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

    func bytes(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        let memory = allocateArray(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { source in
            if source.count > 0 { memory.initialize(from: source.baseAddress!, count: source.count) }
        }
        return ProtobufCBinaryData(len: bytes.count, data: memory)
    }

    func copyArray<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        let memory = allocateArray(T.self, count: values.count)
        values.withUnsafeBufferPointer { source in
            if source.count > 0 { memory.initialize(from: source.baseAddress!, count: source.count) }
        }
        return memory
    }
}
