import Storage
import Testing

@testable import Domain

/// The limits' arithmetic, without Redis: however a rate is turned into GCRA slots, no window
/// of one second can hold more sends than the rate.
@Suite("Notification pacer limits")
struct NotificationPacerTests {
    /// Most sends GCRA lets into a half-open window of one second: the burst at its start,
    /// then one per interval.
    static func mostPerSecond(_ limit: RateLimit) -> Int {
        let period = limit.period.components
        let interval = (period.seconds * 1_000_000 + period.attoseconds / 1_000_000_000_000) / Int64(limit.limit)
        return limit.limit + Int((1_000_000 + interval - 1) / interval) - 1
    }

    @Test("spaced and global limits never exceed the rate in any second", arguments: [1.0, 2, 5, 19, 20, 30, 40, 97, 1000])
    func boundedBySecond(rate: Double) {
        #expect(Self.mostPerSecond(NotificationPacer.spaced(perSecond: rate)) <= Int(rate))
        #expect(Self.mostPerSecond(NotificationPacer.global(perSecond: rate)) <= Int(rate))
    }

    @Test("from 20/s the global limit keeps a second slot in hand and loses one send a second")
    func secondSlot() {
        let limit = NotificationPacer.global(perSecond: 30)
        #expect(limit.limit == 2)
        #expect(Self.mostPerSecond(limit) == 30)
        #expect(NotificationPacer.global(perSecond: 19).limit == 1)
    }
}
