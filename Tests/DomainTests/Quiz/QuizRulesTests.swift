import Codec
import Testing

@testable import Domain

/// Quiz input checked before anything is written: every bad row named by index and field,
/// the replace rule within a batch, a stream's chunks, reward tiers.
@Suite("Quiz rules")
struct QuizRulesTests {
    static func answer(_ user: String, _ question: String, points: Int32 = 10, ms: Int32 = 100, answer: String = "A") -> QuizAnswer {
        QuizAnswer(userID: user, questionID: question, answer: answer, correct: points > 0, points: points, responseTimeMs: ms, answeredAtMs: 0)
    }

    @Test("a batch with bad rows is refused naming the first five by index and field, and counting the rest")
    func badRows() {
        var answers = (0..<20).map { Self.answer("u\($0)", "q1") }
        answers[2].userID = ""
        answers[4].questionID = String(repeating: "x", count: 129)
        answers[6].points = 2_000_000
        answers[8].responseTimeMs = -1
        answers[10].answeredAtMs = -5
        answers[12].answer = "a\u{0}b"
        answers[14].userID = ""
        #expect(throws: RPCError.self) { try QuizRules.defaults.validate(answers) }
        do {
            try QuizRules.defaults.validate(answers)
        } catch {
            #expect(error.code == .invalidArgument)
            for fragment in ["answers[2].user_id", "answers[4].question_id", "answers[6].points", "answers[8].response_time_ms",
                             "answers[10].answered_at_ms", "and 2 more bad answers", "7 invalid answers"] {
                #expect(error.message.contains(fragment), "\(fragment) in \(error.message)")
            }
            #expect(!error.message.contains("answers[12]"))
        }
    }

    @Test("a later answer of a user to a question replaces the earlier one in the batch, byte-exact ids")
    func latestPerQuestion() {
        let batch = [Self.answer("ann", "q1", points: 10), Self.answer("bob", "q1"), Self.answer("ann", "q1", points: 3),
                     Self.answer("caf\u{E9}", "q1", points: 1), Self.answer("cafe\u{301}", "q1", points: 2)]
        let kept = QuizRules.latestPerQuestion(batch)
        #expect(kept.map(\.userID) == ["ann", "bob", "caf\u{E9}", "cafe\u{301}"])
        #expect(kept[0].points == 3)
    }

    @Test("a quiz id becomes the quiz:<id> board; bad ids are refused")
    func quizIDs() throws {
        #expect(try QuizRules.defaults.board(ofQuiz: "spring-2026") == .quiz("spring-2026"))
        for bad in ["", "a b", "x{y}", String(repeating: "q", count: 65)] {
            #expect(throws: RPCError.self) { _ = try QuizRules.defaults.board(ofQuiz: bad) }
        }
    }

    @Test("a stream: one quiz, positions counted across chunks, the answer cap")
    func collector() throws {
        var rules = QuizRules.defaults
        rules.streamMaxAnswers = 25
        var collected = AnswerCollector(rules: rules)
        try collected.add(quizID: "q", answers: (0..<10).map { Self.answer("u\($0)", "q1") })
        try collected.add(quizID: "", answers: (0..<10).map { Self.answer("v\($0)", "q1") })
        #expect(collected.answers.count == 20 && collected.quizID == "q")
        do {
            try collected.add(quizID: "other", answers: [Self.answer("w", "q1")])
            Issue.record("another quiz's chunk was accepted")
        } catch {
            #expect(error.code == .invalidArgument && error.message.contains("one quiz"))
        }
        do {
            try collected.add(quizID: "q", answers: [Self.answer("w", "q1"), Self.answer("", "q1")])
            Issue.record("a bad answer was accepted")
        } catch {
            #expect(error.code == .invalidArgument && error.message.contains("answers[21].user_id"))
        }
        do {
            try collected.add(quizID: "q", answers: (0..<6).map { Self.answer("x\($0)", "q1") })
            Issue.record("the cap was passed")
        } catch {
            #expect(error.code == .resourceExhausted && error.message.contains("QUIZ_STREAM_MAX_ANSWERS"))
        }
        #expect(collected.answers.count == 20)
    }

    @Test("the first chunk must name the quiz")
    func firstChunk() {
        var collected = AnswerCollector(rules: .defaults)
        #expect(throws: RPCError.self) { try collected.add(quizID: "", answers: [Self.answer("u", "q")]) }
    }

    @Test("tiers: ordered, checked for overlap and bounds; the same tiers in another order fingerprint alike")
    func tiers() throws {
        let rules = RewardRules(maxRanks: 100)
        let tiers = [RewardTier(fromRank: 4, toRank: 10, reward: "silver", repeatable: false),
                     RewardTier(fromRank: 1, toRank: 3, reward: "gold", repeatable: false)]
        let ordered = try rules.validate(tiers, distributionID: "d")
        #expect(ordered.map(\.fromRank) == [1, 4])
        #expect(RewardRules.fingerprint(ordered) == RewardRules.fingerprint(try rules.validate(tiers.reversed(), distributionID: "d")))
        var other = ordered
        other[1].repeatable = true
        #expect(RewardRules.fingerprint(ordered) != RewardRules.fingerprint(other))
        let bad: [[RewardTier]] = [
            [], [RewardTier(fromRank: 0, toRank: 1, reward: "x", repeatable: false)],
            [RewardTier(fromRank: 1, toRank: 5, reward: "x", repeatable: false), RewardTier(fromRank: 5, toRank: 6, reward: "y", repeatable: false)],
            [RewardTier(fromRank: 1, toRank: 101, reward: "x", repeatable: false)],
        ]
        for tiers in bad {
            #expect(throws: RPCError.self) { _ = try rules.validate(tiers, distributionID: "d") }
        }
        #expect(throws: RPCError.self) { _ = try rules.validate(tiers, distributionID: "") }
    }
}
