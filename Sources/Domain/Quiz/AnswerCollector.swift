public import Codec

/// The chunks of one `StreamAnswers` call, gathered until the client half-closes: every chunk
/// is checked as it arrives (so a bad one ends the stream at once, naming the answer's
/// position in the stream), and nothing is written before the end.
public struct AnswerCollector: Sendable {
    let rules: QuizRules
    public private(set) var quizID: String?
    public private(set) var answers: [QuizAnswer] = []

    public init(rules: QuizRules) {
        self.rules = rules
    }

    /// Adds a chunk. The first chunk names the quiz; a later one names the same quiz or none.
    public mutating func add(quizID chunkQuizID: String, answers chunk: [QuizAnswer]) throws(RPCError) {
        if let quizID {
            guard chunkQuizID.isEmpty || chunkQuizID.utf8.elementsEqual(quizID.utf8) else {
                throw RPCError(.invalidArgument,
                               "quiz_id: a stream carries one quiz; this chunk names \"\(chunkQuizID.prefix(64))\", the stream \"\(quizID)\"")
            }
        } else {
            _ = try rules.board(ofQuiz: chunkQuizID)
            quizID = chunkQuizID
        }
        guard answers.count + chunk.count <= rules.streamMaxAnswers else {
            throw RPCError(.resourceExhausted,
                           "answers: more than \(rules.streamMaxAnswers) answers in one stream (QUIZ_STREAM_MAX_ANSWERS); nothing saved")
        }
        try rules.validate(chunk, offset: answers.count)
        answers += chunk
    }
}
