import NIOCore

/// The request messages a stream has deframed and its handler not yet taken, oldest first.
///
/// The first message is held inline: most calls carry exactly one, so a unary call's request
/// costs no array allocation (nor the generic array-of-tuples bookkeeping that showed up at
/// c1m1). Streaming calls that run ahead of their handler queue the rest in an array.
struct InboundMessages {
    struct Message {
        var payload: ByteBuffer
        /// Bytes the message took on the wire (prefix included): its flow-control credit.
        var wireBytes: Int
        /// Whether it arrived compressed (its flag byte).
        var compressed = false
    }

    /// Empty only when `rest` holds nothing unread.
    private var first: Message?
    private var rest: [Message] = []
    private var restHead = 0

    var isEmpty: Bool { first == nil }

    mutating func append(_ message: Message) {
        if first == nil {
            first = message
        } else {
            rest.append(message)
        }
    }

    mutating func removeFirst() -> Message? {
        guard let message = first else { return nil }
        if restHead < rest.count {
            first = rest[restHead]
            restHead += 1
            if restHead == rest.count {
                rest.removeAll(keepingCapacity: true)
                restHead = 0
            }
        } else {
            first = nil
        }
        return message
    }

    mutating func removeAll() {
        first = nil
        rest.removeAll()
        restHead = 0
    }
}
