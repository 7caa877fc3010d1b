/// One answer of a user to a question of a quiz (quiz.proto `QuizAnswer`).
public struct QuizAnswer: Sendable, Hashable {
    public var userID: String
    public var questionID: String
    /// The chosen option.
    public var answer: String
    public var correct: Bool
    public var points: Int32
    public var responseTimeMs: Int32
    /// Unix milliseconds; 0 means "when saved".
    public var answeredAtMs: Int64

    public init(userID: String, questionID: String, answer: String, correct: Bool, points: Int32, responseTimeMs: Int32, answeredAtMs: Int64) {
        self.userID = userID
        self.questionID = questionID
        self.answer = answer
        self.correct = correct
        self.points = points
        self.responseTimeMs = responseTimeMs
        self.answeredAtMs = answeredAtMs
    }
}

/// What saving a batch did (`SubmitAnswersResponse`).
public struct SavedAnswers: Sendable, Hashable {
    /// Answers written: one per user and question of the batch (a later answer in the batch
    /// replaced an earlier one of the same user and question).
    public var saved: Int
    /// Users whose quiz score changed.
    public var usersUpdated: Int

    public init(saved: Int, usersUpdated: Int) {
        self.saved = saved
        self.usersUpdated = usersUpdated
    }
}
