public import Codec
import Foundation

/// What ranks `from...to` of a quiz's board get (quiz.proto `RewardTier`).
public struct RewardTier: Sendable, Hashable, Codable {
    public var fromRank: Int
    public var toRank: Int
    public var reward: String
    /// A repeatable tier rewards a user who already holds a reward of this quiz; a tier that
    /// is not skips users holding a reward from a non-repeatable tier (of any distribution).
    public var repeatable: Bool

    public init(fromRank: Int, toRank: Int, reward: String, repeatable: Bool) {
        self.fromRank = fromRank
        self.toRank = toRank
        self.reward = reward
        self.repeatable = repeatable
    }
}

/// One row of the rewards ledger.
public struct Reward: Sendable, Hashable {
    public var userID: String
    public var rank: Int64
    public var reward: String

    public init(userID: String, rank: Int64, reward: String) {
        self.userID = userID
        self.rank = rank
        self.reward = reward
    }
}

/// The bounds of a distribution, checked before anything is written.
public struct RewardRules: Sendable {
    /// Ranks one distribution may reward (`QUIZ_REWARDS_MAX`): bounds its transaction and the
    /// notifications it queues.
    public var maxRanks: Int
    public var maxTiers = 100
    public var rewardMaxLength = 256
    public var distributionIDMaxLength = 128

    public static var defaults: RewardRules { RewardRules(maxRanks: 10_000) }

    public init(maxRanks: Int) {
        self.maxRanks = maxRanks
    }

    /// The tiers ordered by rank, refused when empty, overlapping, out of bounds or past
    /// `maxRanks` ranks in all.
    public func validate(_ tiers: [RewardTier], distributionID: String) throws(RPCError) -> [RewardTier] {
        guard !distributionID.isEmpty, distributionID.utf8.count <= distributionIDMaxLength else {
            throw RPCError(.invalidArgument, "distribution_id: 1..\(distributionIDMaxLength) bytes (it makes the distribution idempotent)")
        }
        guard !tiers.isEmpty, tiers.count <= maxTiers else { throw RPCError(.invalidArgument, "tiers: 1..\(maxTiers) tiers") }
        for (index, tier) in tiers.enumerated() {
            guard tier.fromRank >= 1, tier.toRank >= tier.fromRank else {
                throw RPCError(.invalidArgument, "tiers[\(index)]: ranks must satisfy 1 <= from_rank <= to_rank, got \(tier.fromRank)..\(tier.toRank)")
            }
            guard !tier.reward.isEmpty, tier.reward.utf8.count <= rewardMaxLength else {
                throw RPCError(.invalidArgument, "tiers[\(index)].reward: 1..\(rewardMaxLength) bytes")
            }
        }
        let ordered = tiers.sorted { $0.fromRank < $1.fromRank }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where next.fromRank <= previous.toRank {
            throw RPCError(.invalidArgument, "tiers: ranks \(previous.fromRank)..\(previous.toRank) and \(next.fromRank)..\(next.toRank) overlap")
        }
        let ranks = ordered.reduce(0) { $0 + ($1.toRank - $1.fromRank + 1) }
        guard ranks <= maxRanks else {
            throw RPCError(.invalidArgument, "tiers: \(ranks) ranks in one distribution, at most \(maxRanks) allowed (QUIZ_REWARDS_MAX)")
        }
        return ordered
    }

    /// The tiers as the distribution row stores them, to tell a replay from a reuse of its id:
    /// canonical (ordered tiers, sorted keys), so the same tiers in another order are the same.
    static func fingerprint(_ ordered: [RewardTier]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain strings, ints and bools cannot fail.
        return String(decoding: (try? encoder.encode(ordered)) ?? Data(), as: UTF8.self)
    }
}
