@testable import Storage
import Testing

@Suite("ReplicaLag: a standby's lag from WAL positions")
struct ReplicaLagTests {
    let start = ContinuousClock.now

    @Test func aStandbyThatReplayedEverySampleHasNoLag() {
        var lag = ReplicaLag()
        lag.primary(at: start, lsn: 100)
        lag.primary(at: start + .seconds(1), lsn: 200)
        #expect(lag.replayed(200, now: start + .seconds(9)) == .zero)
    }

    @Test func theLagIsTheAgeOfTheOldestPositionNotReplayed() {
        var lag = ReplicaLag()
        lag.primary(at: start, lsn: 100)
        lag.primary(at: start + .seconds(1), lsn: 200)
        lag.primary(at: start + .seconds(2), lsn: 300)
        #expect(lag.replayed(150, now: start + .seconds(5)) == .seconds(4))
        #expect(lag.replayed(250, now: start + .seconds(5)) == .seconds(3))
        #expect(lag.replayed(300, now: start + .seconds(5)) == .zero)
    }

    @Test func anIdlePrimaryAddsNoSamplesAndNoLag() {
        var lag = ReplicaLag()
        lag.primary(at: start, lsn: 100)
        #expect(lag.replayed(100, now: start) == .zero)
        // Nothing written for an hour: the same position again is no new sample.
        lag.primary(at: start + .seconds(3600), lsn: 100)
        #expect(lag.replayed(100, now: start + .seconds(3601)) == .zero)
    }

    @Test func aFullHistoryKeepsItsOldestSampleSoTheLagNeverShrinks() {
        var lag = ReplicaLag(capacity: 2)
        lag.primary(at: start, lsn: 100)
        lag.primary(at: start + .seconds(1), lsn: 200)
        lag.primary(at: start + .seconds(2), lsn: 300)
        #expect(lag.replayed(50, now: start + .seconds(10)) == .seconds(10))
    }
}
