public import Codec
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

    /// INVALID_ARGUMENT naming the first field a new tournament may not have.
    public func validate() throws(RPCError) {
        guard !id.isEmpty, id.utf8.count <= 64, !id.contains(where: { $0 == "{" || $0 == "}" || $0.isWhitespace }) else {
            throw RPCError(.invalidArgument, "tournament.id: 1..64 characters without spaces or braces")
        }
        guard !name.isEmpty, name.utf8.count <= 200 else {
            throw RPCError(.invalidArgument, "tournament.name: 1..200 characters")
        }
        guard endsAtMs > startsAtMs else {
            throw RPCError(.invalidArgument, "tournament.ends_at_ms: must be after starts_at_ms")
        }
        if let max = maxParticipants, max <= 0 {
            throw RPCError(.invalidArgument, "tournament.max_participants: must be positive (0 means unlimited)")
        }
    }
}
