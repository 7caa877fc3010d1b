internal import Foundation

/// PostgreSQL's binary forms (network byte order), for binary COPY.
enum PostgresBinary {
    /// Seconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01 (UTC).
    static let epochOffset: Int64 = 946_684_800

    @inline(__always)
    static func append<Integer: FixedWidthInteger>(_ value: Integer, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// An integer as int2, int4 or int8; false for another type or when it does not fit.
    static func appendInteger(_ value: Int64, as type: PostgresColumnType, to bytes: inout [UInt8]) -> Bool {
        switch type {
        case .int8: append(value, to: &bytes)
        case .int4:
            guard let narrow = Int32(exactly: value) else { return false }
            append(narrow, to: &bytes)
        case .int2:
            guard let narrow = Int16(exactly: value) else { return false }
            append(narrow, to: &bytes)
        default: return false
        }
        return true
    }

    /// A date as timestamptz/timestamp (microseconds since 2000-01-01 UTC) or date (days).
    static func appendDate(_ date: Date, as type: PostgresColumnType, to bytes: inout [UInt8]) -> Bool {
        let micros = Int64(((date.timeIntervalSince1970 - Double(epochOffset)) * 1_000_000).rounded())
        switch type {
        case .timestamptz, .timestamp: append(micros, to: &bytes)
        case .date:
            let days = micros >= 0 ? micros / 86_400_000_000 : (micros - 86_399_999_999) / 86_400_000_000
            guard let narrow = Int32(exactly: days) else { return false }
            append(narrow, to: &bytes)
        default: return false
        }
        return true
    }

    /// UTF-8 text as a textual type, or jsonb (version 1 + the JSON text).
    static func appendText(_ utf8: some Collection<UInt8>, as type: PostgresColumnType, to bytes: inout [UInt8]) -> Bool {
        if type == .jsonb {
            bytes.append(1)
        } else if !type.isTextual {
            return false
        }
        bytes.append(contentsOf: utf8)
        return true
    }
}
