public import Foundation

/// A type a result column can be read as, from PostgreSQL's text output.
///
/// `Optional` decodes NULL as nil; every other type throws a `.decoding` error on NULL.
public protocol PostgresDecodable {
    /// Reads a non-NULL value from the column's text (not NUL-terminated).
    static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> Self?
    /// The value of a NULL column; nil when NULL is not allowed.
    static var postgresNull: Self? { get }
    /// A type name for error messages.
    static var postgresTypeName: String { get }
}

extension PostgresDecodable {
    public static var postgresNull: Self? { nil }
    public static var postgresTypeName: String { "\(Self.self)" }
}

extension String: PostgresDecodable {
    public static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> String? { String(decoding: text, as: UTF8.self) }
}

extension Int64: PostgresDecodable {
    public static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> Int64? { PostgresText.parseInteger(text) }
}

extension Int: PostgresDecodable {
    public static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> Int? { PostgresText.parseInteger(text).map(Int.init) }
}

extension Int32: PostgresDecodable {
    public static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> Int32? {
        PostgresText.parseInteger(text).flatMap { Int32(exactly: $0) }
    }
}

extension Double: PostgresDecodable {
    public static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> Double? {
        switch String(decoding: text, as: UTF8.self) {
        case "Infinity": .infinity
        case "-Infinity": -.infinity
        case "NaN": .nan
        case let other: Double(other)
        }
    }
}

extension Bool: PostgresDecodable {
    public static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard text.count == 1 else { return nil }
        switch text[0] {
        case UInt8(ascii: "t"): return true
        case UInt8(ascii: "f"): return false
        default: return nil
        }
    }
}

extension Date: PostgresDecodable {
    /// `timestamptz`, `timestamp` (read as UTC) or `date` columns.
    public static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> Date? { PostgresText.parseTimestamp(text) }
}

extension PostgresBytes: PostgresDecodable {
    /// bytea in hex output form (`\x0a1b`), the server default since 9.0.
    public static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> PostgresBytes? {
        guard text.count >= 2, text.count % 2 == 0, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x") else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 2 - 1)
        var index = 2
        while index < text.count {
            guard let high = nibble(text[index]), let low = nibble(text[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return PostgresBytes(bytes)
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText text: UnsafeBufferPointer<UInt8>) -> Wrapped?? {
        Wrapped.decode(postgresText: text).map { .some($0) }
    }
    public static var postgresNull: Wrapped?? { .some(.none) }
    public static var postgresTypeName: String { "\(Wrapped.postgresTypeName)?" }
}
