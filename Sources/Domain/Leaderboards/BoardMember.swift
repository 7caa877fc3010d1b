import Storage
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

    /// The time as the member's prefix holds it: clamped to what 13 digits hold.
    static func clampedTime(_ ms: Int64) -> Int64 { min(max(ms, 0), invertBase) }

    var encoded: String {
        let inverted = String(Self.invertBase - Self.clampedTime(achievedAtMs))
        return String(repeating: "0", count: Self.timeDigits - inverted.utf8.count) + inverted + userID
    }

    init(userID: String, achievedAtMs: Int64) {
        self.userID = userID
        self.achievedAtMs = achievedAtMs
    }

    init?(encoded: String) {
        var encoded = encoded
        guard let member = encoded.withUTF8({ BoardMember(encoded: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = member
    }

    /// Reads a member from the bytes of a Redis reply (no intermediate `String`).
    init?(encoded bytes: UnsafeRawBufferPointer) {
        guard bytes.count > Self.timeDigits else { return nil }
        var inverted: Int64 = 0
        for index in 0..<Self.timeDigits {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            inverted = inverted * 10 + Int64(digit)
        }
        achievedAtMs = Self.invertBase - inverted
        userID = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[Self.timeDigits...]), as: UTF8.self)
    }
}
