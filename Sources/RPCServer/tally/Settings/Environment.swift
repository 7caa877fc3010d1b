import Foundation
import Storage

/// Reads one setting: its flag first, then its environment variable, then its default; a
/// value that does not parse or is out of range is a `SettingsError` naming the variable.
struct Environment {
    var values: [String: String] = ProcessInfo.processInfo.environment

    func string(_ flag: String?, _ name: String) -> String? {
        if let flag { return flag.isEmpty ? nil : flag }
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    func int(_ flag: Int?, _ name: String, default fallback: Int, range: ClosedRange<Int> = 0...Int.max) throws -> Int {
        let value: Int
        if let flag {
            value = flag
        } else if let text = values[name], !text.isEmpty {
            guard let parsed = Int(text) else { throw SettingsError("\(name) must be an integer, got \"\(text)\"") }
            value = parsed
        } else {
            return fallback
        }
        guard range.contains(value) else {
            throw SettingsError("\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    /// An integer with no default: nil when neither the flag nor the variable is set.
    func optionalInt(_ flag: Int?, _ name: String, range: ClosedRange<Int>) throws -> Int? {
        guard flag != nil || !(values[name] ?? "").isEmpty else { return nil }
        return try int(flag, name, default: range.lowerBound, range: range)
    }

    func double(_ flag: Double?, _ name: String, default fallback: Double, range: ClosedRange<Double>) throws -> Double {
        let value: Double
        if let flag {
            value = flag
        } else if let text = values[name], !text.isEmpty {
            guard let parsed = Double(text), parsed.isFinite else { throw SettingsError("\(name) must be a number, got \"\(text)\"") }
            value = parsed
        } else {
            return fallback
        }
        guard range.contains(value) else {
            throw SettingsError("\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    /// A duration given in whole milliseconds; 0 means "none" where `zeroMeansNone`.
    func milliseconds(_ flag: Int?, _ name: String, default fallback: Duration?, zeroMeansNone: Bool = false,
                      range: ClosedRange<Int> = 0...Int.max) throws -> Duration? {
        let millis = try int(flag, name, default: Int(fallback?.milliseconds ?? 0), range: range)
        if millis == 0 && zeroMeansNone { return nil }
        return .milliseconds(millis)
    }

    func flag(_ flag: Bool, _ name: String, whenSet value: String = "1") -> Bool {
        flag || values[name] == value
    }
}

/// A setting that cannot be used: the server does not start, and says why in one line.
struct SettingsError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
