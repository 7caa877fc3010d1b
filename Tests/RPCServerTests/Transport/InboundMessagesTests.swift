import NIOCore
import Testing

@testable import RPCServer

/// The per-stream queue of deframed request messages: first message inline, the rest queued.
@Suite("InboundMessages")
struct InboundMessagesTests {
    private func message(_ value: UInt8, wireBytes: Int = 6) -> InboundMessages.Message {
        var buffer = ByteBufferAllocator().buffer(capacity: 1)
        buffer.writeInteger(value)
        return .init(payload: buffer, wireBytes: wireBytes)
    }

    @Test("messages come out in order, however appends and removals interleave", arguments: [1, 2, 3, 17])
    func order(batch: Int) {
        var queue = InboundMessages()
        #expect(queue.isEmpty)
        var next: UInt8 = 0
        var expected: UInt8 = 0
        for _ in 0..<5 {
            for _ in 0..<batch {
                queue.append(message(next, wireBytes: Int(next)))
                next &+= 1
            }
            // Take all but one, then add more behind the one left.
            for _ in 0..<(batch - 1) {
                let taken = queue.removeFirst()
                #expect(taken?.payload.getInteger(at: 0, as: UInt8.self) == expected)
                #expect(taken?.wireBytes == Int(expected))
                expected &+= 1
            }
        }
        while let taken = queue.removeFirst() {
            #expect(taken.payload.getInteger(at: 0, as: UInt8.self) == expected)
            expected &+= 1
        }
        #expect(expected == next)
        #expect(queue.isEmpty)
    }

    @Test("removeAll empties the queue, which then works as new")
    func removeAll() {
        var queue = InboundMessages()
        for value in 0..<4 { queue.append(message(UInt8(value))) }
        _ = queue.removeFirst()
        queue.removeAll()
        #expect(queue.isEmpty)
        #expect(queue.removeFirst() == nil)
        queue.append(message(9))
        #expect(queue.removeFirst()?.payload.getInteger(at: 0, as: UInt8.self) == 9)
        #expect(queue.isEmpty)
    }
}
