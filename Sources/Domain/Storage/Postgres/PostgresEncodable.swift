public import Foundation

/// A value that can be sent as a statement parameter or a COPY field, in PostgreSQL's text
/// input syntax; the server casts it to the parameter's or column's type.
///
/// Parameters go in text form, which lets the server infer each parameter's type from the
/// statement. COPY uses the binary form when every column's type has one here
/// (`appendPostgresBinary`), since parsing text (timestamps above all) is much of what a bulk
/// load costs the server; the column types are known then.
public protocol PostgresEncodable: Sendable {
    /// True when the value is SQL NULL (an empty optional).
    var isPostgresNull: Bool { get }
    /// Appends the value's text form; not called when `isPostgresNull`.
    func appendPostgresText(to bytes: inout [UInt8])
    /// Appends the value's binary form for a column of `type` (binary COPY) and returns true,
    /// or returns false, appending nothing, when it has none for that type. Not called when
    /// `isPostgresNull`. The default has none.
    func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool
}

extension PostgresEncodable {
    public var isPostgresNull: Bool { false }
    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool { false }
}

extension String: PostgresEncodable {
    public func appendPostgresText(to bytes: inout [UInt8]) { bytes.append(contentsOf: utf8) }
    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        PostgresBinary.appendText(utf8, as: type, to: &bytes)
    }
}

extension Substring: PostgresEncodable {
    public func appendPostgresText(to bytes: inout [UInt8]) { bytes.append(contentsOf: utf8) }
    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        PostgresBinary.appendText(utf8, as: type, to: &bytes)
    }
}

extension Int: PostgresEncodable {
    public func appendPostgresText(to bytes: inout [UInt8]) { PostgresText.appendDecimal(Int64(self), to: &bytes) }
    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        PostgresBinary.appendInteger(Int64(self), as: type, to: &bytes)
    }
}

extension Int64: PostgresEncodable {
    public func appendPostgresText(to bytes: inout [UInt8]) { PostgresText.appendDecimal(self, to: &bytes) }
    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        PostgresBinary.appendInteger(self, as: type, to: &bytes)
    }
}

extension Int32: PostgresEncodable {
    public func appendPostgresText(to bytes: inout [UInt8]) { PostgresText.appendDecimal(Int64(self), to: &bytes) }
    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        PostgresBinary.appendInteger(Int64(self), as: type, to: &bytes)
    }
}

extension Double: PostgresEncodable {
    /// Swift's shortest round-trip form; infinities and NaN in PostgreSQL's spelling.
    public func appendPostgresText(to bytes: inout [UInt8]) {
        if isNaN {
            bytes.append(contentsOf: "NaN".utf8)
        } else if isInfinite {
            bytes.append(contentsOf: (self < 0 ? "-Infinity" : "Infinity").utf8)
        } else {
            bytes.append(contentsOf: description.utf8)
        }
    }

    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        switch type {
        case .float8: PostgresBinary.append(bitPattern, to: &bytes)
        case .float4: PostgresBinary.append(Float(self).bitPattern, to: &bytes)
        default: return false
        }
        return true
    }
}

extension Bool: PostgresEncodable {
    public func appendPostgresText(to bytes: inout [UInt8]) { bytes.append(self ? UInt8(ascii: "t") : UInt8(ascii: "f")) }
    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        guard type == .bool else { return false }
        bytes.append(self ? 1 : 0)
        return true
    }
}

extension Date: PostgresEncodable {
    /// ISO 8601 in UTC with microseconds, as `timestamptz` reads it.
    public func appendPostgresText(to bytes: inout [UInt8]) { PostgresText.appendTimestamp(self, to: &bytes) }
    /// Microseconds since 2000-01-01 UTC for timestamptz/timestamp, days for date.
    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        PostgresBinary.appendDate(self, as: type, to: &bytes)
    }
}

/// Bytes for a `bytea` parameter or column.
public struct PostgresBytes: PostgresEncodable, Hashable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// bytea's hex form, `\x0a1b...`.
    public func appendPostgresText(to bytes: inout [UInt8]) {
        let digits = Array("0123456789abcdef".utf8)
        bytes.reserveCapacity(bytes.count + 2 + self.bytes.count * 2)
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(UInt8(ascii: "x"))
        for byte in self.bytes {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
    }

    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        guard type == .bytea else { return false }
        bytes.append(contentsOf: self.bytes)
        return true
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var isPostgresNull: Bool {
        switch self {
        case .none: true
        case .some(let value): value.isPostgresNull
        }
    }

    public func appendPostgresText(to bytes: inout [UInt8]) {
        if case .some(let value) = self { value.appendPostgresText(to: &bytes) }
    }

    public func appendPostgresBinary(to bytes: inout [UInt8], as type: PostgresColumnType) -> Bool {
        guard case .some(let value) = self else { return false }
        return value.appendPostgresBinary(to: &bytes, as: type)
    }
}

/// SQL NULL where no typed optional is at hand: `[PostgresNull(), 1]`.
public struct PostgresNull: PostgresEncodable, Hashable {
    public init() {}
    public var isPostgresNull: Bool { true }
    public func appendPostgresText(to bytes: inout [UInt8]) {}
}
