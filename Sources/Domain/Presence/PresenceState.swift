public import Codec

/// A user's presence as subscribers see it: the most present of its live devices.
///
/// `version` grows with every change of the user (Redis assigns it in the same script that
/// publishes the change), so an instance keeps the newest of what pub/sub and reads tell it.
public struct PresenceState: Sendable, Hashable {
    public var status: Tally_V1_PresenceStatus
    public var activity: String
    public var changedAtMs: Int64
    public var version: Int64

    public init(status: Tally_V1_PresenceStatus, activity: String, changedAtMs: Int64, version: Int64) {
        self.status = status
        self.activity = activity
        self.changedAtMs = changedAtMs
        self.version = version
    }

    /// A user Redis knows nothing of.
    static let unknown = PresenceState(status: .offline, activity: "", changedAtMs: 0, version: 0)

    /// The wire form for `user`.
    public func change(of user: String) -> Tally_V1_PresenceChange {
        var change = Tally_V1_PresenceChange()
        change.userId = user
        change.status = status
        change.activity = activity
        change.changedAtMs = changedAtMs
        return change
    }

    /// Parses `version \t status \t changed_at_ms \t until_ms \t activity` (the user's record in
    /// Redis and the payload of its channel). A record whose devices all expired (`until_ms`
    /// passed, nobody swept yet: its instance died) reads as OFFLINE.
    init?(record bytes: [UInt8], nowMs: Int64) {
        let fields = bytes.split(separator: UInt8(ascii: "\t"), maxSplits: 4, omittingEmptySubsequences: false)
        guard fields.count == 5,
            let version = Int64(String(decoding: fields[0], as: UTF8.self)),
            let status = Int32(String(decoding: fields[1], as: UTF8.self)),
            let changedAt = Int64(String(decoding: fields[2], as: UTF8.self)),
            let until = Int64(String(decoding: fields[3], as: UTF8.self))
        else { return nil }
        self.version = version
        self.changedAtMs = changedAt
        if status != Tally_V1_PresenceStatus.offline.rawValue && until < nowMs {
            self.status = .offline
            self.activity = ""
        } else {
            self.status = Tally_V1_PresenceStatus(rawValue: status)
            self.activity = String(decoding: fields[4], as: UTF8.self)
        }
    }
}
