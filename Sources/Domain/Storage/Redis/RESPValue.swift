/// A Redis reply (RESP2), as Swift values.
///
/// Error replies are values here, not thrown, so one failed command of a pipeline does not
/// hide the others' replies; `RedisClient.send` throws them as `RedisError.server`.
public enum RESPValue: Sendable, Hashable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString([UInt8])
    case null
    case array([RESPValue])

    /// The reply as text: bulk or simple strings, and integers in decimal.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .integer(let value): String(value)
        default: nil
        }
    }

    /// The reply as an integer: integers, and strings holding a decimal integer.
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString, .simpleString: string.flatMap { Int64($0) }
        default: nil
        }
    }

    /// The reply as a number: integers and strings holding a decimal (Redis scores).
    public var double: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .bulkString, .simpleString: string.flatMap { Double($0) }
        default: nil
        }
    }

    public var array: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text): Array(text.utf8)
        default: nil
        }
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
