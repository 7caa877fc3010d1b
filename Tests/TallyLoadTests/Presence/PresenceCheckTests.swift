import LoadKit
import Testing

@Suite("Presence lost-change check")
struct PresenceCheckTests {
    let sent: [Int: PresenceMark] = [
        1: PresenceMark(status: 2, activity: "t=100"),
        2: PresenceMark.hello,
        3: PresenceMark(status: 3, activity: "t=300"),
    ]

    @Test("last received equal to last sent everywhere: nothing lost")
    func allDelivered() {
        var check = PresenceCheck()
        check.check(subscriber: 0, watching: [1, 2, 3], received: sent) { sent[$0] }
        #expect(check == PresenceCheck(checked: 3, lost: 0, unchecked: 0, sample: nil))
    }

    @Test("an older state, another status or nothing at all is a lost change")
    func lost() {
        var received = sent
        received[1] = PresenceMark(status: 2, activity: "t=90")
        received[3] = PresenceMark(status: 1, activity: "t=300")
        received[2] = nil
        var check = PresenceCheck()
        check.check(subscriber: 7, watching: [1, 2, 3], received: received) { sent[$0] }
        #expect(check.checked == 3 && check.lost == 3)
        #expect(check.sample == #"user-7 last received AWAY "t=90" of user-1, which last sent AWAY "t=100""#)
    }

    @Test("users whose sends are unknown here and ended subscribers are not checked")
    func unchecked() {
        var check = PresenceCheck()
        check.check(subscriber: 0, watching: [1, 9], received: sent) { sent[$0] }
        check.skip(4)
        #expect(check.checked == 1 && check.lost == 0 && check.unchecked == 5)
        var other = PresenceCheck()
        other.check(subscriber: 5, watching: [3], received: [:]) { sent[$0] }
        check.merge(other)
        #expect(check.checked == 2 && check.lost == 1 && check.unchecked == 5)
        #expect(check.sample?.hasPrefix("user-5 last received nothing of user-3") == true)
    }
}

extension PresenceCheck {
    init(checked: Int, lost: Int, unchecked: Int, sample: String?) {
        self.init()
        self.checked = checked
        self.lost = lost
        self.unchecked = unchecked
        self.sample = sample
    }
}
