import NIOCore

/// A top-level varint field of a response (`replayed` of TopupResponse), read off the wire
/// bytes without decoding the message: the engine counts responses, it does not parse them,
/// and skipping over the other fields costs a few byte reads per response.
struct ResponseFlag: Sendable {
    let number: UInt64

    /// The field `name` of `message` when it is a single bool or integer, else nil.
    init?(named name: String, in message: MessageSchema?) {
        guard let field = message?.field(named: name), !field.isRepeated else { return nil }
        switch field.kind {
        case .bool, .int32, .int64, .uint32, .uint64, .sint32, .sint64, .enumeration: self.number = UInt64(field.number)
        default: return nil
        }
    }

    /// True when the field is present and not zero (proto3 leaves zero values out).
    func isSet(in message: ByteBuffer) -> Bool {
        message.withUnsafeReadableBytes { bytes in
            var index = 0
            func varint() -> UInt64? {
                var value: UInt64 = 0
                var shift: UInt64 = 0
                while index < bytes.count, shift < 64 {
                    let byte = bytes[index]
                    index += 1
                    value |= UInt64(byte & 0x7F) << shift
                    if byte & 0x80 == 0 { return value }
                    shift += 7
                }
                return nil
            }
            var found = false
            while index < bytes.count, let tag = varint() {
                switch tag & 7 {
                case 0:
                    guard let value = varint() else { return found }
                    if tag >> 3 == number { found = value != 0 }  // the last occurrence wins
                case 1: index += 8
                case 2:
                    guard let length = varint(), length <= UInt64(bytes.count - index) else { return found }
                    index += Int(length)
                case 5: index += 4
                default: return found
                }
            }
            return found
        }
    }
}
