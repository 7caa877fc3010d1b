import Storage

/// The time an event counts at in the rollups, and the UTC hours, days and months it falls in.
///
/// An event counts at its client time when that lies within 24 hours of when Tally received
/// it, else at its received time: the same rule as SQL's `event_rollup_time` (migration 0012),
/// which recounts and checks over the `events` table use. Client time answers "how many games
/// ended per hour yesterday" for phones that send late (offline play, batched uploads); the
/// 24 h bound keeps a wrong clock (0, a year ahead) from scattering counts into hours nobody
/// reads or retention already dropped, and makes a day final a day after it ends.
enum RollupTime {
    static let hourMs: Int64 = 3_600_000
    static let dayMs: Int64 = 86_400_000
    static let window: Int64 = 24 * hourMs

    /// Unix ms the event counts at.
    static func of(clientMs: Int64, receivedMs: Int64) -> Int64 {
        abs(clientMs - receivedMs) <= window ? clientMs : receivedMs
    }

    /// Hours since the epoch (UTC) of a unix ms time.
    static func hour(_ ms: Int64) -> Int64 { floorDiv(ms, hourMs) }

    /// Days since the epoch (UTC) of a unix ms time.
    static func day(_ ms: Int64) -> Int64 { floorDiv(ms, dayMs) }

    /// Months since year 0 (`year * 12 + month - 1`) of a day since the epoch.
    static func month(ofDay day: Int64) -> Int64 {
        let civil = PostgresText.civil(fromDays: day)
        return civil.year * 12 + civil.month - 1
    }

    /// The first day (since the epoch) of a month since year 0.
    static func firstDay(ofMonth month: Int64) -> Int64 {
        PostgresText.days(fromCivil: month / 12, month % 12 + 1, 1)
    }

    /// `YYYY-MM-DD` of a day since the epoch.
    static func date(ofDay day: Int64) -> String {
        let civil = PostgresText.civil(fromDays: day)
        return "\(civil.year)-\(twoDigits(civil.month))-\(twoDigits(civil.day))"
    }

    static func twoDigits(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }

    private static func floorDiv(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return value % divisor < 0 ? quotient - 1 : quotient
    }
}
