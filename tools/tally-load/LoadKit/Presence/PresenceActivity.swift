/// The activity text a presence load sends with each status change: `t=<unix ns>`, the
/// sender's wall-clock send time. The server passes activity through untouched, so a
/// subscriber's delivery latency is its receive time minus this; the wall clock (not the
/// monotonic one) so processes of one run on one machine agree.
public enum PresenceActivity {
    static let prefix = "t="

    /// The activity of a change sent at `unixNanoseconds` (at most 21 bytes, far below the
    /// server's 256).
    public static func encode(sentAt unixNanoseconds: Int64) -> String {
        prefix + String(unixNanoseconds)
    }

    /// The send time in `activity`, nil when it is not one of ours (the empty activity of a
    /// `Hello`, a snapshot of a user that never changed, anything else).
    public static func sendTime(in activity: String) -> Int64? {
        let bytes = activity.utf8
        guard bytes.count > 2, bytes.count <= 21, activity.hasPrefix(prefix) else { return nil }
        var value: Int64 = 0
        for byte in bytes.dropFirst(2) {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, overflowTimes) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowSum) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            if overflowTimes || overflowSum { return nil }
            value = sum
        }
        return value
    }
}

/// A user's presence as the load sees it: what a sender last sent, or what a subscriber last
/// received, compared by the lost-change check.
public struct PresenceMark: Sendable, Hashable, CustomStringConvertible {
    public var status: Int32
    public var activity: String

    public init(status: Int32, activity: String) {
        self.status = status
        self.activity = activity
    }

    /// What a `Hello` makes a user: ONLINE without activity.
    public static let hello = PresenceMark(status: 1, activity: "")

    public var description: String {
        let names = ["UNSPECIFIED", "ONLINE", "AWAY", "BUSY", "OFFLINE"]
        let name = names.indices.contains(Int(status)) ? names[Int(status)] : "STATUS_\(status)"
        return activity.isEmpty ? name : "\(name) \"\(activity)\""
    }
}
