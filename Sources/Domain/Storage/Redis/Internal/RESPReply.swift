internal import CHiredis

/// One reply as hiredis' reader parsed it, read in place.
///
/// Hot reads decode straight from hiredis' tree into their own types: going through
/// `RESPValue` first costs an array plus one byte array per element (for `Rank`'s window of
/// 11 members and 11 scores, most of the client's allocations per call). Only valid inside
/// the closure it is handed to; the reader frees the tree right after.
package struct RESPReply {
    private let reply: UnsafePointer<redisReply>

    init(_ reply: UnsafePointer<redisReply>) {
        self.reply = reply
    }

    package var isArray: Bool { reply.pointee.type == REDIS_REPLY_ARRAY }
    package var isNull: Bool { reply.pointee.type == REDIS_REPLY_NIL }

    /// The message of an error reply; nil for every other type.
    package var errorMessage: String? {
        guard reply.pointee.type == REDIS_REPLY_ERROR else { return nil }
        return withBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// Elements of an array reply; 0 for every other type.
    package var count: Int { isArray ? reply.pointee.elements : 0 }

    /// The element at `index` of an array reply, nil past its end or for other types.
    package func element(_ index: Int) -> RESPReply? {
        guard index >= 0, index < count, let element = reply.pointee.element[index] else { return nil }
        return RESPReply(UnsafePointer(element))
    }

    /// The bytes of a bulk string, status or error reply (empty for every other type).
    package func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        let type = reply.pointee.type
        guard type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS || type == REDIS_REPLY_ERROR,
            let pointer = reply.pointee.str, reply.pointee.len > 0
        else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: pointer, count: reply.pointee.len))
    }

    /// Integers, and bulk strings or statuses holding a decimal integer (what Lua and sorted-set
    /// scores of whole numbers come back as), parsed without building a `String`.
    package var int: Int64? {
        if reply.pointee.type == REDIS_REPLY_INTEGER { return Int64(reply.pointee.integer) }
        return withBytes { Self.decimal($0) }
    }

    /// The reply as a `RESPValue` (copies every string).
    package var value: RESPValue {
        let reply = self.reply.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .bulkString(withBytes { Array($0) })
        case REDIS_REPLY_STATUS:
            return .simpleString(withBytes { String(decoding: $0, as: UTF8.self) })
        case REDIS_REPLY_ERROR:
            return .error(withBytes { String(decoding: $0, as: UTF8.self) })
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(reply.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                if let element = element(index) { elements.append(element.value) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    /// An optionally negative run of ASCII digits as an integer; nil for anything else
    /// (empty, other characters, overflow).
    package static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard !bytes.isEmpty else { return nil }
        var index = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative {
            index = 1
            guard bytes.count > 1 else { return nil }
        }
        // Accumulate negatively: Int64.min has no positive counterpart.
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (next, overflowB) = shifted.subtractingReportingOverflow(Int64(digit))
            guard !overflowA, !overflowB else { return nil }
            value = next
            index += 1
        }
        if negative { return value }
        return value == .min ? nil : -value
    }
}
