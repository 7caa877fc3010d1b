import LoadKit
import Testing

@Suite("Presence activity: the send time a change carries")
struct PresenceActivityTests {
    @Test("the send time round-trips", arguments: [Int64(0), 1, 1_764_855_123_456_789_012, Int64.max])
    func roundTrip(_ time: Int64) {
        let activity = PresenceActivity.encode(sentAt: time)
        #expect(activity == "t=\(time)")
        #expect(activity.utf8.count <= 256, "the server's activity limit")
        #expect(PresenceActivity.sendTime(in: activity) == time)
    }

    @Test("anything else carries no send time", arguments: [
        "", "t=", "t=12a", "x=5", "in a match", "t=-5", "t= 5", "t=99999999999999999999", "tt=5",
    ])
    func foreign(_ activity: String) {
        #expect(PresenceActivity.sendTime(in: activity) == nil)
    }
}
