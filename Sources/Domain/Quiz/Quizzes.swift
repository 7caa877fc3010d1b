import Codec
import Foundation
public import Logging
public import Storage
import Units

/// The quiz domain's entry points: save answers (a batch in one transaction), read a quiz's
/// board, distribute rewards.
///
/// Postgres is the truth: answers, scores and the `quiz:<id>` board rows commit together; the
/// board is then merged into Redis (and every instance's mirror) by the leaderboard engine,
/// whose repair re-merges it if that merge is lost.
public final class Quizzes: Sendable {
    let database: PostgresDatabase
    let leaderboards: LeaderboardStore
    public let rules: QuizRules
    public let rewardRules: RewardRules
    /// Each reward queues a message to its user.
    let notifications: Notifications?
    let logger: Logger

    public init(database: PostgresDatabase, leaderboards: LeaderboardStore, notifications: Notifications?, rules: QuizRules,
                rewardRules: RewardRules, logger: Logger) {
        self.database = database
        self.leaderboards = leaderboards
        self.notifications = notifications
        self.rules = rules
        self.rewardRules = rewardRules
        self.logger = logger
    }

    /// Saves a `SubmitAnswers` batch: all or nothing.
    public func submit(quizID: String, answers: [QuizAnswer], deadline: ContinuousClock.Instant? = nil) async throws -> SavedAnswers {
        let board = try rules.board(ofQuiz: quizID)
        guard answers.count <= rules.batchMax else {
            throw RPCError(.invalidArgument, "answers: \(answers.count) answers in one batch, at most \(rules.batchMax) allowed (QUIZ_BATCH_MAX)")
        }
        try rules.validate(answers)
        return try await save(quizID: quizID, board: board, answers: answers, deadline: deadline)
    }

    /// Saves what a `StreamAnswers` call collected, once the client half-closed.
    public func submit(_ collected: AnswerCollector, deadline: ContinuousClock.Instant? = nil) async throws -> SavedAnswers {
        guard let quizID = collected.quizID else { return SavedAnswers(saved: 0, usersUpdated: 0) }
        return try await save(quizID: quizID, board: try rules.board(ofQuiz: quizID), answers: collected.answers, deadline: deadline)
    }

    private func save(quizID: String, board: BoardID, answers: [QuizAnswer], deadline: ContinuousClock.Instant?) async throws -> SavedAnswers {
        let latest = QuizRules.latestPerQuestion(answers)
        guard !latest.isEmpty else { return SavedAnswers(saved: 0, usersUpdated: 0) }
        let nowMs = Date().unixMilliseconds
        let saved = try await database.withConnection(deadline: deadline) { connection in
            try await QuizStore.save(quizID: quizID, board: board, answers: latest, nowMs: nowMs, on: connection)
        }
        // After the commit: the board in Redis and the mirrors (a lost merge is repaired).
        await leaderboards.publish(saved.board)
        return SavedAnswers(saved: saved.saved, usersUpdated: saved.board.improved.count)
    }

    /// A page of the quiz's board: points, then lower total time, then user id (as every board
    /// of the engine orders equal entries: by the user id's bytes, descending).
    public func leaderboard(quizID: String, limit: Int, cursor: String, deadline: ContinuousClock.Instant? = nil) async throws -> LeaderboardPage {
        try await leaderboards.top(try rules.board(ofQuiz: quizID), limit: limit, cursor: cursor, deadline: deadline)
    }

    /// Rewards the quiz's top ranks by tier, once per `distributionID`: the same id again
    /// returns the same rewards (`replayed`), with other tiers it is FAILED_PRECONDITION.
    public func distribute(quizID: String, distributionID: String, tiers: [RewardTier], deadline: ContinuousClock.Instant? = nil)
        async throws -> (rewards: [Reward], replayed: Bool) {
        _ = try rules.board(ofQuiz: quizID)
        let ordered = try rewardRules.validate(tiers, distributionID: distributionID)
        // The messages commit with the rewards (the outbox), so a reward is never without its
        // message, and are queued after the commit.
        let (outcome, messages) = try await database.withTransaction(deadline: deadline) { connection in
            let outcome = try await RewardLedger.distribute(quizID: quizID, distributionID: distributionID, tiers: ordered, on: connection)
            guard case .distributed(let rewards) = outcome, notifications != nil else { return (outcome, [NotificationMessage]()) }
            let messages = rewards.map { RewardMessage.message(for: $0, quizID: quizID, distributionID: distributionID) }
            try await Notifications.record(messages, on: connection)
            return (outcome, messages)
        }
        switch outcome {
        case .distributed(let rewards):
            await notifications?.dispatch(messages)
            return (rewards, false)
        case .replayed(let rewards):
            return (rewards, true)
        }
    }
}
