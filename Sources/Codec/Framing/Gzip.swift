internal import CZlib
public import NIOCore

/// gzip (RFC 1952) for gRPC message compression, on zlib.
public enum Gzip {
    /// Compresses `input`.
    public static func compress(_ input: ByteBuffer, level: Int32 = 6) -> ByteBuffer {
        var stream = z_stream()
        precondition(czlib_deflate_init_gzip(&stream, level) == Z_OK, "zlib deflateInit2 failed")
        defer { deflateEnd(&stream) }
        var output = ByteBufferAllocator().buffer(capacity: Int(deflateBound(&stream, uLong(input.readableBytes))) + 32)
        input.withUnsafeReadableBytes { inBytes in
            stream.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(inBytes.count)
            var status = Z_OK
            while status == Z_OK {
                output.reserveCapacity(minimumWritableBytes: 4096)
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { outBytes in
                    stream.next_out = outBytes.bindMemory(to: Bytef.self).baseAddress
                    stream.avail_out = uInt(outBytes.count)
                    status = deflate(&stream, Z_FINISH)
                    return outBytes.count - Int(stream.avail_out)
                }
            }
            precondition(status == Z_STREAM_END, "zlib deflate failed")
        }
        return output
    }

    /// Decompresses `input`, refusing to produce more than `limit` bytes (a compressed message
    /// may not smuggle a payload past the receive limit).
    public static func decompress(_ input: ByteBuffer, limit: Int) throws(GzipError) -> ByteBuffer {
        var stream = z_stream()
        guard czlib_inflate_init_gzip(&stream) == Z_OK else { throw .corrupt }
        defer { inflateEnd(&stream) }
        var output = ByteBufferAllocator().buffer(capacity: min(limit, max(256, input.readableBytes * 4)))
        let result: GzipError? = input.withUnsafeReadableBytes { inBytes in
            stream.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(inBytes.count)
            while true {
                let produced = output.readableBytes
                output.reserveCapacity(minimumWritableBytes: min(64 * 1024, limit - produced + 1))
                var status = Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { outBytes in
                    // One byte past the limit is enough to know the message is too large.
                    let room = min(outBytes.count, limit + 1 - produced)
                    stream.next_out = outBytes.bindMemory(to: Bytef.self).baseAddress
                    stream.avail_out = uInt(room)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return room - Int(stream.avail_out)
                }
                if output.readableBytes > limit { return .tooLarge }
                switch status {
                case Z_STREAM_END:
                    return stream.avail_in == 0 ? nil : .corrupt
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    // No progress possible: input ended before the gzip trailer.
                    return .corrupt
                default:
                    return .corrupt
                }
            }
        }
        if let result { throw result }
        return output
    }
}

public enum GzipError: Error, Hashable, Sendable {
    case corrupt
    case tooLarge
}
