import Codec
public import Domain

/// `tally.v1.QuizService`: answers in one transaction per batch or stream, the quiz's board,
/// reward distributions (admin: they hand out rewards).
public struct QuizService: RPCService {
    let quizzes: Quizzes

    public init(quizzes: Quizzes) {
        self.quizzes = quizzes
    }

    public var methods: [RPCMethod] {
        [
            .unary(Self.path("SubmitAnswers")) { (request: Tally_V1_SubmitAnswersRequest, context: ServerContext) in
                let saved = try await quizzes.submit(quizID: request.quizId, answers: request.answers.map(Self.answer), deadline: context.deadline)
                return Self.message(saved)
            },
            // Collected in memory until the client half-closes, then saved in one transaction: a
            // stream that is cancelled or fails before that saves nothing.
            .clientStreaming(Self.path("StreamAnswers")) { (chunks: RequestStream<Tally_V1_AnswerChunk>, context: ServerContext) in
                var collected = AnswerCollector(rules: quizzes.rules)
                for try await chunk in chunks {
                    try collected.add(quizID: chunk.quizId, answers: chunk.answers.map(Self.answer))
                }
                return Self.message(try await quizzes.submit(collected, deadline: context.deadline))
            },
            .unary(Self.path("Leaderboard")) { (request: Tally_V1_QuizLeaderboardRequest, context: ServerContext) in
                let page = try await quizzes.leaderboard(
                    quizID: request.quizId, limit: try LeaderboardService.limit(request.limit), cursor: request.cursor, deadline: context.deadline)
                var response = Tally_V1_QuizLeaderboardResponse()
                response.entries = page.entries.map { LeaderboardService.message($0, quizBoard: true) }
                response.nextCursor = page.nextCursor
                response.total = Int64(page.total)
                return response
            },
            .unary(Self.path("DistributeRewards"), access: .admin) { (request: Tally_V1_DistributeRewardsRequest, context: ServerContext) in
                let tiers = request.tiers.map {
                    RewardTier(fromRank: Int($0.fromRank), toRank: Int($0.toRank), reward: $0.reward, repeatable: $0.repeatable)
                }
                let (rewards, replayed) = try await quizzes.distribute(
                    quizID: request.quizId, distributionID: request.distributionId, tiers: tiers, deadline: context.deadline)
                var response = Tally_V1_DistributeRewardsResponse()
                response.rewards = rewards.map { reward in
                    var message = Tally_V1_Reward()
                    message.userId = reward.userID
                    message.rank = reward.rank
                    message.reward = reward.reward
                    return message
                }
                response.replayed = replayed
                return response
            },
        ]
    }

    private static func answer(_ message: Tally_V1_QuizAnswer) -> QuizAnswer {
        QuizAnswer(userID: message.userId, questionID: message.questionId, answer: message.answer, correct: message.correct,
                   points: message.points, responseTimeMs: message.responseTimeMs, answeredAtMs: message.answeredAtMs)
    }

    private static func message(_ saved: SavedAnswers) -> Tally_V1_SubmitAnswersResponse {
        var response = Tally_V1_SubmitAnswersResponse()
        response.saved = Int32(saved.saved)
        response.usersUpdated = Int32(saved.usersUpdated)
        return response
    }

    private static func path(_ method: String) -> String {
        RPCMethod.path(service: "tally.v1.QuizService", method: method)
    }
}
