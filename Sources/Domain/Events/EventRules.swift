import Storage
/// The limits an event must respect, from the API contract (proto/tally/v1/events.proto).
public struct EventRules: Sendable {
    /// Events in one `Track` request or stream batch (`EVENT_BATCH_MAX`).
    public var batchMax: Int
    public var idMaxLength: Int
    public var userIDMaxLength: Int
    public var typeMaxLength: Int
    public var attributesMax: Int
    public var attributeKeyMaxLength: Int
    public var attributeValueMaxLength: Int
    /// How far a client clock may run ahead of the server's before the event is rejected.
    public var maxClockSkewMs: Int64

    public static let defaults = EventRules(
        batchMax: 100, idMaxLength: 64, userIDMaxLength: 128, typeMaxLength: 64, attributesMax: 32,
        attributeKeyMaxLength: 64, attributeValueMaxLength: 1024, maxClockSkewMs: 24 * 3600 * 1000)

    /// Scores are stored exactly in Redis sorted sets (IEEE doubles), so they stay within
    /// the integers a double represents exactly.
    public static let maxScore: Int64 = (1 << 53) - 1

    /// Whether `score` is within ±`maxScore`. By magnitude: `abs(Int64.min)` traps, and a
    /// client may send any int64.
    public static func isStorableScore(_ score: Int64) -> Bool {
        score.magnitude <= UInt64(maxScore)
    }

    /// The built-in event types; anything else must be under `custom.`.
    public static let knownTypes: Set<String> = [
        "app_launched", "game_started", "game_ended", "level_completed", "purchase",
    ]
    public static let customPrefix = "custom."
}
