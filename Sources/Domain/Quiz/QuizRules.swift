public import Codec
import Storage

/// The bounds of quiz input, checked before anything is written: a batch with one bad answer
/// is refused whole (INVALID_ARGUMENT naming the first few bad rows by index and field).
public struct QuizRules: Sendable {
    /// Answers in one `SubmitAnswers` (`QUIZ_BATCH_MAX`).
    public var batchMax: Int
    /// Answers in one `StreamAnswers` stream (`QUIZ_STREAM_MAX_ANSWERS`).
    public var streamMaxAnswers: Int
    public var userIDMaxLength = 128
    public var questionIDMaxLength = 128
    public var answerMaxLength = 1024
    /// |points| of one answer: sums of 10,000 answers stay far inside 64 bits.
    public var maxPoints: Int32 = 1_000_000
    /// One answer took at most a day.
    public var maxResponseTimeMs: Int32 = 86_400_000
    /// Bad rows named in the error; the rest are counted.
    static let namedErrors = 5

    public static var defaults: QuizRules { QuizRules(batchMax: 10_000, streamMaxAnswers: 100_000) }

    public init(batchMax: Int, streamMaxAnswers: Int) {
        self.batchMax = batchMax
        self.streamMaxAnswers = streamMaxAnswers
    }

    /// The quiz id as its board names it: 1..64 characters without spaces or braces.
    public func board(ofQuiz quizID: String, field: String = "quiz_id") throws(RPCError) -> BoardID {
        guard !quizID.isEmpty else { throw RPCError(.invalidArgument, "\(field): must not be empty") }
        do {
            return try BoardID(parsing: "quiz:" + quizID)
        } catch {
            throw RPCError(.invalidArgument, "\(field): must be 1..64 characters without spaces or braces")
        }
    }

    /// Checks every answer; `offset` is the index of `answers[0]` in the whole request or
    /// stream, so a streamed chunk's errors name the answer's position in the stream.
    public func validate(_ answers: [QuizAnswer], offset: Int = 0) throws(RPCError) {
        var problems: [String] = []
        var bad = 0
        for (index, answer) in answers.enumerated() {
            guard let problem = problem(of: answer) else { continue }
            bad += 1
            if problems.count < Self.namedErrors { problems.append("answers[\(offset + index)].\(problem)") }
        }
        guard bad > 0 else { return }
        let more = bad > problems.count ? "; and \(bad - problems.count) more bad answers" : ""
        throw RPCError(.invalidArgument, "\(bad) invalid answers, nothing saved: " + problems.joined(separator: "; ") + more)
    }

    /// The first thing wrong with one answer, as "field: why".
    func problem(of answer: QuizAnswer) -> String? {
        if answer.userID.isEmpty || answer.userID.utf8.count > userIDMaxLength {
            return "user_id: must be 1..\(userIDMaxLength) bytes"
        }
        if answer.userID.utf8.contains(0) { return "user_id: must not contain NUL" }
        if answer.questionID.isEmpty || answer.questionID.utf8.count > questionIDMaxLength {
            return "question_id: must be 1..\(questionIDMaxLength) bytes"
        }
        if answer.questionID.utf8.contains(0) { return "question_id: must not contain NUL" }
        if answer.answer.utf8.count > answerMaxLength { return "answer: at most \(answerMaxLength) bytes" }
        if answer.answer.utf8.contains(0) { return "answer: must not contain NUL" }
        if abs(Int64(answer.points)) > Int64(maxPoints) { return "points: must be within ±\(maxPoints), got \(answer.points)" }
        if answer.responseTimeMs < 0 || answer.responseTimeMs > maxResponseTimeMs {
            return "response_time_ms: must be 0..\(maxResponseTimeMs), got \(answer.responseTimeMs)"
        }
        if answer.answeredAtMs < 0 { return "answered_at_ms: must not be negative, got \(answer.answeredAtMs)" }
        return nil
    }

    /// The batch without earlier answers that a later one of the same user and question
    /// replaces (an upsert of both in one statement would fail), in first-seen order.
    static func latestPerQuestion(_ answers: [QuizAnswer]) -> [QuizAnswer] {
        var position: [AnswerKey: Int] = [:]
        position.reserveCapacity(answers.count)
        var kept: [QuizAnswer] = []
        kept.reserveCapacity(answers.count)
        for answer in answers {
            let key = AnswerKey(user: ExactID(answer.userID), question: ExactID(answer.questionID))
            if let index = position[key] {
                kept[index] = answer
            } else {
                position[key] = kept.count
                kept.append(answer)
            }
        }
        return kept
    }

    private struct AnswerKey: Hashable {
        var user: ExactID
        var question: ExactID
    }
}
