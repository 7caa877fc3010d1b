internal import Foundation

/// PostgreSQL's text forms of integers and timestamps, without Foundation formatters (which
/// allocate and cost microseconds per value on bulk paths).
///
/// Timestamps are read as the session prints them: sessions of the pool run with
/// `TimeZone=UTC` and `DateStyle=ISO`, so `2024-05-06 07:08:09.123456+00`.
package enum PostgresText {
    static func appendDecimal(_ value: Int64, to bytes: inout [UInt8]) {
        if value == 0 {
            bytes.append(UInt8(ascii: "0"))
            return
        }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes of scratch, no heap
        var count = 0
        withUnsafeMutableBytes(of: &digits) { scratch in
            while magnitude > 0 {
                scratch[31 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            bytes.append(contentsOf: scratch[(32 - count)...])
        }
    }

    /// Parses an optionally signed decimal integer; nil when it is not one or overflows.
    static func parseInteger(_ text: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        var negative = false
        if index < text.count, text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") {
            negative = text[index] == UInt8(ascii: "-")
            index += 1
        }
        guard index < text.count else { return nil }
        var value: Int64 = 0
        while index < text.count {
            let digit = Int64(text[index]) - Int64(UInt8(ascii: "0"))
            guard digit >= 0, digit <= 9 else { return nil }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            if overflow1 || overflow2 { return nil }
            value = next
            index += 1
        }
        return value
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff+00` for `date`, UTC, microsecond precision.
    static func appendTimestamp(_ date: Date, to bytes: inout [UInt8]) {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = totalMicros / 1_000_000
        var micros = totalMicros % 1_000_000
        if micros < 0 {
            micros += 1_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civil(fromDays: days)
        func two(_ value: Int64) {
            bytes.append(UInt8(ascii: "0") + UInt8(value / 10))
            bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
        }
        if year < 1000 {
            for _ in 0..<(year < 10 ? 3 : year < 100 ? 2 : 1) { bytes.append(UInt8(ascii: "0")) }
        }
        appendDecimal(year, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        two(month)
        bytes.append(UInt8(ascii: "-"))
        two(day)
        bytes.append(UInt8(ascii: " "))
        two(secondOfDay / 3600)
        bytes.append(UInt8(ascii: ":"))
        two(secondOfDay / 60 % 60)
        bytes.append(UInt8(ascii: ":"))
        two(secondOfDay % 60)
        bytes.append(UInt8(ascii: "."))
        var divisor: Int64 = 100_000
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(micros / divisor % 10))
            divisor /= 10
        }
        bytes.append(contentsOf: "+00".utf8)
    }

    /// Parses `timestamptz`/`timestamp`/`date` output in ISO style: a date, optionally a time
    /// with fraction, optionally a `+HH[:MM[:SS]]` offset (no offset: UTC). Nil otherwise.
    static func parseTimestamp(_ text: UnsafeBufferPointer<UInt8>) -> Date? {
        var index = 0
        func number(_ digits: Int) -> Int64? {
            guard index + digits <= text.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<digits {
                let digit = Int64(text[index]) - 48
                guard (0...9).contains(digit) else { return nil }
                value = value * 10 + digit
                index += 1
            }
            return value
        }
        func expect(_ character: Character) -> Bool {
            guard index < text.count, text[index] == character.asciiValue! else { return false }
            index += 1
            return true
        }
        if text.count == 8, text.elementsEqual("infinity".utf8) { return .distantFuture }
        if text.count == 9, text.elementsEqual("-infinity".utf8) { return .distantPast }
        var yearDigits = 0
        while index + yearDigits < text.count, (48...57).contains(text[index + yearDigits]) { yearDigits += 1 }
        guard yearDigits >= 4, let year = number(yearDigits), expect("-"), let month = number(2), expect("-"),
            let day = number(2)
        else { return nil }
        var seconds = days(fromCivil: year, month, day) * 86_400
        var micros: Int64 = 0
        if index < text.count, expect(" ") || expect("T") {
            guard let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2) else { return nil }
            seconds += hour * 3600 + minute * 60 + second
            if expect(".") {
                var scale: Int64 = 100_000
                while index < text.count, (48...57).contains(text[index]) {
                    micros += Int64(text[index] - 48) * scale
                    scale /= 10
                    index += 1
                }
            }
            if index < text.count, text[index] == UInt8(ascii: "+") || text[index] == UInt8(ascii: "-") {
                let sign: Int64 = text[index] == UInt8(ascii: "+") ? 1 : -1
                index += 1
                guard let offsetHours = number(2) else { return nil }
                var offset = offsetHours * 3600
                if expect(":") {
                    guard let offsetMinutes = number(2) else { return nil }
                    offset += offsetMinutes * 60
                    if expect(":") {
                        guard let offsetSeconds = number(2) else { return nil }
                        offset += offsetSeconds
                    }
                }
                seconds -= sign * offset
            }
        }
        if index < text.count, text[index...].elementsEqual(" BC".utf8) { return nil }  // not used by Tally
        guard index == text.count else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    package static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The inverse of `days(fromCivil:)`.
    package static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
