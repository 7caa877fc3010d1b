/// Random edits of seed inputs, the way libFuzzer's default mutations go (without its coverage
/// feedback): flip bits, overwrite with boundary bytes, insert, erase, duplicate, splice.
struct Mutator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    /// SplitMix64: deterministic for a seed, so a printed seed reproduces a run.
    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private mutating func below(_ bound: Int) -> Int {
        bound <= 1 ? 0 : Int(next() % UInt64(bound))
    }

    private static let interesting: [UInt8] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x05, 0x10, 0x40]
    /// Inputs stay below this size (larger ones only slow each run down).
    private static let maxLength = 64 * 1024

    mutating func mutate(_ seeds: [[UInt8]]) -> [UInt8] {
        var input = seeds[below(seeds.count)]
        for _ in 0...below(8) {
            switch below(7) {
            case 0 where !input.isEmpty:
                input[below(input.count)] ^= UInt8(1 << below(8))
            case 1 where !input.isEmpty:
                input[below(input.count)] = Self.interesting[below(Self.interesting.count)]
            case 2:
                let bytes = (0..<1 + below(16)).map { _ in UInt8(truncatingIfNeeded: next()) }
                input.insert(contentsOf: bytes, at: below(input.count + 1))
            case 3 where !input.isEmpty:
                let start = below(input.count)
                input.removeSubrange(start..<min(input.count, start + 1 + below(32)))
            case 4 where !input.isEmpty:
                let start = below(input.count)
                let slice = input[start..<min(input.count, start + 1 + below(64))]
                input.insert(contentsOf: slice, at: below(input.count + 1))
            case 5:
                let other = seeds[below(seeds.count)]
                guard !other.isEmpty else { continue }
                let start = below(other.count)
                input.insert(contentsOf: other[start..<min(other.count, start + 1 + below(256))], at: below(input.count + 1))
            case 6 where input.count >= 4:
                // A length or count field: overwrite four bytes with a big-endian boundary value.
                let at = below(input.count - 3)
                let value = [UInt32(0), 1, 0x7fff_ffff, 0xffff_ffff, 0x0100_0000, 0x4000][below(6)]
                for i in 0..<4 { input[at + i] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(i))) }
            default:
                continue
            }
        }
        if input.count > Self.maxLength { input.removeLast(input.count - Self.maxLength) }
        return input
    }
}
