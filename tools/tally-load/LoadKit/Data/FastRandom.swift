/// SplitMix64: a tiny, fast, seedable generator for request data. Not for secrets;
/// `SystemRandomNumberGenerator` costs a system call per value here, far too slow per request.
public struct FastRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        self.state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The generator of stream `index` of a run seeded with `seed`: its start drawn from the
    /// run's seed by SplitMix itself. (Seeds `seed + index * gamma` would be the same sequence
    /// shifted by `index` steps, so workers would repeat each other's "random" ids.)
    public static func stream(_ index: Int, of seed: UInt64) -> FastRandom {
        var mixer = FastRandom(seed: seed ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
        _ = mixer.next()
        return FastRandom(seed: mixer.next())
    }
}
