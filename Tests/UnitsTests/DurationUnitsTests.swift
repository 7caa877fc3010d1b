import Testing
import Units

@Suite("Duration units")
struct DurationUnitsTests {
    @Test("whole units round toward zero")
    func roundDown() {
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
        #expect((Duration.microseconds(1999)).milliseconds == 1)
        #expect(Duration.nanoseconds(2999).microseconds == 2)
        #expect(Duration.seconds(2).nanoseconds == 2_000_000_000)
        #expect(Duration.milliseconds(-1500).milliseconds == -1500)
    }

    @Test("rounded-up milliseconds never shorten a timeout")
    func roundUp() {
        #expect(Duration.microseconds(1).millisecondsRoundedUp == 1)
        #expect(Duration.microseconds(1001).millisecondsRoundedUp == 2)
        #expect(Duration.milliseconds(7).millisecondsRoundedUp == 7)
        #expect(Duration.zero.millisecondsRoundedUp == 0)
    }

    @Test("a deadline thousands of years away saturates instead of trapping")
    func saturates() {
        let far = Duration.seconds(Int64.max / 2)
        #expect(far.milliseconds == .max)
        #expect(far.nanoseconds == .max)
        #expect(far.millisecondsRoundedUp == .max)
        #expect(Duration.seconds(Int64.min / 2).nanoseconds == .min)
    }

    @Test("seconds as a floating-point number")
    func floatingSeconds() {
        #expect(Duration.milliseconds(1250).inSeconds == 1.25)
    }
}
