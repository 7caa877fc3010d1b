/// How a user's best score sits in a Redis sorted set so that ties go to who got there first.
///
/// The sorted-set score is the game score (exact: scores are limited to ±2^53). Redis orders
/// equal scores by member, bytewise; reads go high to low (`ZREVRANGE`), so the member starts
/// with the achievement time *inverted* and zero-padded: an earlier time sorts higher.
/// A hash maps each user to their current member.
struct BoardMember: Sendable, Hashable {
    var userID: String
    var achievedAtMs: Int64

    /// 13 digits hold every unix-millisecond time until the year 2286.
    static let timeDigits = 13
    static let invertBase: Int64 = 9_999_999_999_999

    var encoded: String {
        let inverted = String(Self.invertBase - min(max(achievedAtMs, 0), Self.invertBase))
        return String(repeating: "0", count: Self.timeDigits - inverted.utf8.count) + inverted + userID
    }

    init(userID: String, achievedAtMs: Int64) {
        self.userID = userID
        self.achievedAtMs = achievedAtMs
    }

    init?(encoded: String) {
        let utf8 = encoded.utf8
        guard utf8.count > Self.timeDigits,
            let inverted = Int64(Substring(utf8.prefix(Self.timeDigits)))
        else { return nil }
        achievedAtMs = Self.invertBase - inverted
        userID = String(Substring(utf8.dropFirst(Self.timeDigits)))
    }
}
