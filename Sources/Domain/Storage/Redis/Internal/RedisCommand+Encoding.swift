internal import CHiredis
import NIOCore

extension RedisCommand {
    /// Appends the command in RESP, formatted by hiredis' `redisFormatCommandArgv`.
    func write(to buffer: inout ByteBuffer) {
        storage.withUnsafeBufferPointer { storage in
            let base = UnsafeRawPointer(storage.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(lengths.count)
            var offset = 0
            for length in lengths {
                pointers.append((base + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            var formatted: UnsafeMutablePointer<CChar>?
            let count = lengths.withUnsafeBufferPointer { lengths in
                lengths.withMemoryRebound(to: Int.self) { sizes in
                    // size_t and Int have the same layout on every platform Swift runs on.
                    sizes.baseAddress!.withMemoryRebound(to: size_t.self, capacity: sizes.count) { sizes in
                        redisFormatCommandArgv(&formatted, Int32(pointers.count), &pointers, sizes)
                    }
                }
            }
            guard count > 0, let formatted else { return }
            defer { redisFreeCommand(formatted) }
            buffer.writeBytes(UnsafeRawBufferPointer(start: formatted, count: Int(count)))
        }
    }
}
