import LoadKit
import Testing

@Suite("Presence subscriptions")
struct PresenceSubscriptionsTests {
    @Test("distinct others of the population, reproducible from the seed", arguments: [0, 17, 999])
    func distinctOthers(_ user: Int) {
        var random = FastRandom.stream(user, of: 42)
        let picked = PresenceSubscriptions.pick(for: user, count: 10, users: 1000, random: &random)
        #expect(picked.count == 10)
        #expect(Set(picked).count == 10)
        #expect(!picked.contains(user))
        #expect(picked.allSatisfy { (0..<1000).contains($0) })
        var again = FastRandom.stream(user, of: 42)
        #expect(PresenceSubscriptions.pick(for: user, count: 10, users: 1000, random: &again) == picked)
    }

    @Test("no more others than asked for: all of them")
    func smallPopulation() {
        var random = FastRandom(seed: 1)
        #expect(PresenceSubscriptions.pick(for: 2, count: 10, users: 5, random: &random) == [0, 1, 3, 4])
        #expect(PresenceSubscriptions.pick(for: 0, count: 4, users: 5, random: &random).sorted() == [1, 2, 3, 4])
    }
}
