/// Whom each stream of a presence load watches.
public enum PresenceSubscriptions {
    /// `count` distinct users of `0 ..< users` other than `user`, drawn with `random` (all the
    /// others when there are no more than `count`), so each user has `count` subscribers on average.
    public static func pick(for user: Int, count: Int, users: Int, random: inout FastRandom) -> [Int] {
        let others = users - 1
        guard count < others else { return (0..<users).filter { $0 != user } }
        var chosen: [Int] = []
        var seen = Set<Int>()
        chosen.reserveCapacity(count)
        while chosen.count < count {
            // A draw from the others: 0 ..< others, shifted past `user`.
            var candidate = Int(random.next() % UInt64(others))
            if candidate >= user { candidate += 1 }
            if seen.insert(candidate).inserted { chosen.append(candidate) }
        }
        return chosen
    }
}
