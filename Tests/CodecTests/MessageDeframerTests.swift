@testable import Codec
import NIOCore
import Testing

@Suite("gRPC message framing")
struct MessageDeframerTests {
    private func frame(_ payload: [UInt8], compressed: Bool = false) -> [UInt8] {
        var buffer = ByteBuffer()
        MessageFramer.frame(payload: ByteBuffer(bytes: payload), compressed: compressed, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    private func drain(_ deframer: inout MessageDeframer) throws -> [[UInt8]] {
        var messages: [[UInt8]] = []
        while let message = try deframer.next() { messages.append(Array(message.readableBytesView)) }
        return messages
    }

    @Test("messages reassemble whatever the DATA frame boundaries", arguments: [1, 2, 3, 5, 7, 64, 1000])
    func reassembly(chunkSize: Int) throws {
        let payloads: [[UInt8]] = [[], [1], Array(repeating: 7, count: 300), Array(0..<255)]
        let wire = payloads.flatMap { frame($0) }
        var deframer = MessageDeframer(maxMessageSize: 4096, encoding: nil)
        var received: [[UInt8]] = []
        var offset = 0
        while offset < wire.count {
            let end = min(wire.count, offset + chunkSize)
            wire[offset..<end].withUnsafeBytes { deframer.append($0) }
            received += try drain(&deframer)
            offset = end
        }
        #expect(received == payloads)
        #expect(!deframer.hasPartialMessage)
    }

    @Test("a message over the limit is RESOURCE_EXHAUSTED before it is buffered")
    func oversize() {
        var deframer = MessageDeframer(maxMessageSize: 100, encoding: nil)
        let header: [UInt8] = [0, 0, 0, 0, 101]
        header.withUnsafeBytes { deframer.append($0) }
        #expect(throws: RPCError.self) { try deframer.next() }
        do {
            _ = try deframer.next()
        } catch {
            #expect(error.code == .resourceExhausted)
        }
    }

    @Test("an invalid compressed flag is INTERNAL")
    func invalidFlag() {
        var deframer = MessageDeframer(maxMessageSize: 100, encoding: nil)
        [2, 0, 0, 0, 0].withUnsafeBytes { deframer.append($0) }
        do {
            _ = try deframer.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .internalError)
        }
    }

    @Test("a compressed message without grpc-encoding is INTERNAL")
    func compressedWithoutEncoding() {
        var deframer = MessageDeframer(maxMessageSize: 100, encoding: nil)
        frame([1, 2, 3], compressed: true).withUnsafeBytes { deframer.append($0) }
        do {
            _ = try deframer.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .internalError)
        }
    }

    @Test("gzip round trip", arguments: [0, 1, 100, 100_000])
    func gzipRoundTrip(size: Int) throws {
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 * 31) }
        let compressed = Gzip.compress(ByteBuffer(bytes: payload))
        var deframer = MessageDeframer(maxMessageSize: 1 << 20, encoding: .gzip)
        frame(Array(compressed.readableBytesView), compressed: true).withUnsafeBytes { deframer.append($0) }
        #expect(try drain(&deframer) == [payload])
    }

    @Test("each message says whether it arrived compressed (a stream may mix both under gzip)")
    func compressedFlagPerMessage() throws {
        let compressed = Gzip.compress(ByteBuffer(bytes: [1, 2, 3]))
        var deframer = MessageDeframer(maxMessageSize: 1 << 20, encoding: .gzip)
        (frame([9]) + frame(Array(compressed.readableBytesView), compressed: true) + frame([8])).withUnsafeBytes { deframer.append($0) }
        var seen: [([UInt8], Bool)] = []
        while let message = try deframer.next() {
            seen.append((Array(message.readableBytesView), deframer.lastMessageCompressed))
        }
        #expect(seen.map(\.0) == [[9], [1, 2, 3], [8]])
        #expect(seen.map(\.1) == [false, true, false])
    }

    @Test("a gzip bomb stops at the limit with RESOURCE_EXHAUSTED")
    func gzipBomb() {
        let compressed = Gzip.compress(ByteBuffer(repeating: 0, count: 10_000_000))
        #expect(compressed.readableBytes < 100_000)
        var deframer = MessageDeframer(maxMessageSize: 1 << 20, encoding: .gzip)
        frame(Array(compressed.readableBytesView), compressed: true).withUnsafeBytes { deframer.append($0) }
        do {
            _ = try deframer.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .resourceExhausted)
        }
    }

    @Test("corrupt gzip is INTERNAL", arguments: [[UInt8]([0x1f, 0x8b]), [1, 2, 3, 4], []])
    func corruptGzip(bytes: [UInt8]) {
        var deframer = MessageDeframer(maxMessageSize: 1 << 20, encoding: .gzip)
        frame(bytes, compressed: true).withUnsafeBytes { deframer.append($0) }
        do {
            _ = try deframer.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .internalError)
        }
    }

    @Test("a long stream whose messages straddle DATA frames keeps a bounded buffer while payloads are still held")
    func boundedBufferAcrossStraddlingMessages() throws {
        let payload = Array(repeating: UInt8(9), count: 1000)
        let wire = (0..<2000).flatMap { _ in frame(payload) }  // 1005 bytes a message
        var deframer = MessageDeframer(maxMessageSize: 4096, encoding: nil)
        var held: [ByteBuffer] = []  // payloads queued for a handler share the buffer's storage
        var received = 0
        var largest = 0
        var offset = 0
        while offset < wire.count {
            let end = min(wire.count, offset + 1500)
            wire[offset..<end].withUnsafeBytes { deframer.append($0) }
            while let message = try deframer.next() {
                #expect(message.readableBytes == payload.count)
                held.append(message)
                received += 1
            }
            if held.count > 8 { held.removeFirst(4) }
            largest = max(largest, deframer.bufferCapacity)
            offset = end
        }
        #expect(received == 2000)
        #expect(largest <= 8 * 1024, "the buffer grew to \(largest) bytes")
    }
}
