/// Durations as flags take them: `10s`, `500ms`, `250us`, `2m`, `1h`, `1.5s`; a bare number
/// is seconds.
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value.isFinite else { return nil }
            return .nanoseconds(Int64((value * scale * 1e9).rounded()))
        }
        guard let value = Double(text), value >= 0, value.isFinite else { return nil }
        return .nanoseconds(Int64((value * 1e9).rounded()))
    }
}
