import Testing

@testable import LoadKit

@Suite("Generator streams")
struct FastRandomTests {
    @Test("the workers' generators of one seed never repeat each other's values (ids, users)")
    func streamsDoNotOverlap() {
        var seen = Set<UInt64>()
        var drawn = 0
        for worker in 0..<64 {
            var random = FastRandom.stream(worker, of: 0x7A11_7A11)
            for _ in 0..<2000 {
                seen.insert(random.next())
                drawn += 1
            }
        }
        #expect(seen.count == drawn)
    }

    @Test("a stream is reproducible from its seed")
    func reproducible() {
        var first = FastRandom.stream(3, of: 42)
        var second = FastRandom.stream(3, of: 42)
        #expect((0..<10).map { _ in first.next() } == (0..<10).map { _ in second.next() })
    }
}
