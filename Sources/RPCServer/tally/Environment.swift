import ArgumentParser
import Foundation

/// Reads settings from flags first, then the environment, then a default, and names the
/// variable in the error when a value does not parse.
struct Environment {
    var values: [String: String] = ProcessInfo.processInfo.environment

    func string(_ flag: String?, _ name: String) -> String? {
        if let flag { return flag }
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    func int(_ flag: Int?, _ name: String, default fallback: Int, range: ClosedRange<Int> = 0...Int.max) throws -> Int {
        let value: Int
        if let flag {
            value = flag
        } else if let text = values[name], !text.isEmpty {
            guard let parsed = Int(text) else { throw ValidationError("\(name) must be an integer, got \"\(text)\"") }
            value = parsed
        } else {
            return fallback
        }
        guard range.contains(value) else {
            throw ValidationError("\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    /// A duration given in whole milliseconds; 0 means "none" where `zeroMeansNone`.
    func milliseconds(_ flag: Int?, _ name: String, default fallback: Duration?, zeroMeansNone: Bool = false) throws
        -> Duration?
    {
        let fallbackMillis = fallback.map { Int($0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000) } ?? 0
        let millis = try int(flag, name, default: fallbackMillis)
        if millis == 0 && zeroMeansNone { return nil }
        return .milliseconds(millis)
    }
}
