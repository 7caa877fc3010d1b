import Storage
/// A tournament: its own board of best scores reached within its time window.
public struct Tournament: Sendable, Hashable {
    public var id: String
    public var name: String
    public var startsAtMs: Int64
    public var endsAtMs: Int64
    /// nil: unlimited.
    public var maxParticipants: Int?
    /// When true only joined users' scores count; otherwise a user's first score joins them
    /// (while places are left).
    public var joinRequired: Bool
    public var participants: Int

    public init(id: String, name: String, startsAtMs: Int64, endsAtMs: Int64, maxParticipants: Int?, joinRequired: Bool, participants: Int = 0) {
        self.id = id
        self.name = name
        self.startsAtMs = startsAtMs
        self.endsAtMs = endsAtMs
        self.maxParticipants = maxParticipants
        self.joinRequired = joinRequired
        self.participants = participants
    }
}
