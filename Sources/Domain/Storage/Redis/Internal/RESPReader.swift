internal import CHiredis
package import NIOCore

/// hiredis' reply parser (`redisReader`): bytes from the socket in, parsed replies out.
///
/// Non-blocking and allocation-light, so it runs on the connection's event loop. Owned by
/// exactly one `RedisConnection`, which frees it.
package final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    struct ProtocolError: Error, CustomStringConvertible {
        var description: String
    }

    package init() {
        reader = redisReaderCreate()
    }

    deinit {
        redisReaderFree(reader)
    }

    package func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            _ = redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
    }

    /// Hands the next complete reply to `body`, which reads it in place (hiredis frees it
    /// when `body` returns); false until more bytes arrive.
    package func withNextReply(_ body: (RESPReply) throws -> Void) throws -> Bool {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            let message = withUnsafeBytes(of: reader.pointee.errstr) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            throw ProtocolError(description: "bad reply from Redis: \(message)")
        }
        guard let raw else { return false }
        defer { freeReplyObject(raw) }
        try body(RESPReply(UnsafePointer(raw.assumingMemoryBound(to: redisReply.self))))
        return true
    }

    /// The next complete reply as a `RESPValue`, or nil until more bytes arrive.
    func next() throws -> RESPValue? {
        var value: RESPValue?
        _ = try withNextReply { value = $0.value }
        return value
    }
}
