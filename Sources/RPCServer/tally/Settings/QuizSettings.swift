import ArgumentParser
import Domain

/// Quizzes: batch and stream bounds, reward distributions.
struct QuizSettings: ParsableArguments {
    @Option(help: "Answers in one SubmitAnswers call, saved in one transaction (env QUIZ_BATCH_MAX, default 10000).")
    var quizBatchMax: Int?

    @Option(help: "Answers in one StreamAnswers stream (env QUIZ_STREAM_MAX_ANSWERS, default 100000).")
    var quizStreamMaxAnswers: Int?

    @Option(help: "Ranks one DistributeRewards call may reward (env QUIZ_REWARDS_MAX, default 10000).")
    var quizRewardsMax: Int?

    func configuration(_ env: Environment) throws -> (rules: QuizRules, rewards: RewardRules) {
        var rules = QuizRules.defaults
        rules.batchMax = try env.int(quizBatchMax, "QUIZ_BATCH_MAX", default: rules.batchMax, range: 1...100_000)
        rules.streamMaxAnswers = try env.int(quizStreamMaxAnswers, "QUIZ_STREAM_MAX_ANSWERS", default: rules.streamMaxAnswers, range: 1...10_000_000)
        var rewards = RewardRules.defaults
        rewards.maxRanks = try env.int(quizRewardsMax, "QUIZ_REWARDS_MAX", default: rewards.maxRanks, range: 1...1_000_000)
        return (rules, rewards)
    }
}
