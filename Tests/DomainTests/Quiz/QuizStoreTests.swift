import Foundation
import Storage
import TestSupport
import Testing

@testable import Domain

/// The quiz tables on a real PostgreSQL: totals recomputed from the answers, exact under
/// concurrent batches of one user, with the board's rows and revisions alongside.
@Suite("Quiz store")
struct QuizStoreTests {
    static func withDatabase<T>(_ body: (PostgresDatabase) async throws -> T) async throws -> T {
        try await MigratedDatabase.with(maxConnections: 8, body)
    }

    static func save(_ answers: [QuizAnswer], on database: PostgresDatabase) async throws -> QuizStore.Saved {
        try await database.withConnection { connection in
            try await QuizStore.save(quizID: "q", board: .quiz("q"), answers: QuizRules.latestPerQuestion(answers), nowMs: 1_000, on: connection)
        }
    }

    static func totals(_ database: PostgresDatabase) async throws -> [String: [Int64]] {
        let rows = try await database.withConnection { connection in
            try await connection.query(
                """
                SELECT s.user_id, s.points, s.correct, s.total_time_ms, s.answers, b.score,
                       (extract(epoch FROM b.achieved_at) * 1000)::bigint
                FROM quiz_scores s JOIN leaderboard_scores b ON b.board = 'quiz:q' AND b.user_id = s.user_id
                """)
        }
        var totals: [String: [Int64]] = [:]
        for row in rows {
            totals[try row.decode(0, as: String.self)] = try (1...6).map { try row.decode($0, as: Int64.self) }
        }
        return totals
    }

    @Test("a replaced answer is counted once: totals recomputed, the board row follows, revisions grow")
    func replace() async throws {
        try await Self.withDatabase { database in
            let first = try await Self.save([QuizRulesTests.answer("ann", "q1", points: 10, ms: 100),
                                             QuizRulesTests.answer("ann", "q2", points: 5, ms: 200)], on: database)
            #expect(first.saved == 2 && first.board.improved.count == 1 && first.board.pendingMerge != nil)
            let again = try await Self.save([QuizRulesTests.answer("ann", "q2", points: 0, ms: 900)], on: database)
            // points, correct, total time, answers; the board's score and time.
            #expect(try await Self.totals(database)["ann"] == [10, 1, 1000, 2, 10, 1000])
            let revisions = (first.board.improved + again.board.improved).compactMap(\.revision)
            #expect(revisions.count == 2 && revisions[1] > revisions[0])
            let same = try await Self.save([QuizRulesTests.answer("ann", "q2", points: 0, ms: 900)], on: database)
            #expect(same.board.improved.isEmpty && same.board.pendingMerge == nil)
        }
    }

    @Test("concurrent batches replacing the same answers keep every score equal to the sum of its stored answers")
    func concurrentReplacements() async throws {
        try await Self.withDatabase { database in
            let users = ["ann", "bob", "cid", "dan"]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for batch in 0..<24 {
                    group.addTask {
                        // Every batch replaces the shared question with its own points, and adds one of its own.
                        let order = batch % 2 == 0 ? users : users.reversed()
                        let answers = order.flatMap { user in
                            [QuizRulesTests.answer(user, "shared", points: Int32(batch + 1), ms: Int32(10 * (batch + 1))),
                             QuizRulesTests.answer(user, "q\(batch)", points: 1, ms: 5)]
                        }
                        _ = try await Self.save(answers, on: database)
                    }
                }
                try await group.waitForAll()
            }
            let mismatches = try await database.withConnection { connection in
                try await connection.query(
                    """
                    SELECT s.user_id FROM quiz_scores s JOIN (
                      SELECT user_id, sum(points) AS points, count(*) FILTER (WHERE correct) AS correct,
                             sum(response_time_ms) AS time_ms, count(*) AS answers
                      FROM quiz_answers WHERE quiz_id = 'q' GROUP BY user_id
                    ) a USING (user_id)
                    WHERE s.quiz_id = 'q' AND (s.points, s.correct, s.total_time_ms, s.answers) <> (a.points, a.correct, a.time_ms, a.answers)
                    """).count
            }
            #expect(mismatches == 0)
            #expect(try await Self.totals(database).count == 4)
        }
    }

    @Test("concurrent batches of the same users never lose an answer's points, and the last revision holds the totals")
    func concurrentBatches() async throws {
        try await Self.withDatabase { database in
            let users = ["ann", "bob", "cid"]
            let saves = try await withThrowingTaskGroup(of: QuizStore.Saved.self) { group in
                for question in 0..<24 {
                    group.addTask {
                        // Each batch answers one question for every user, in another user order.
                        let order = question % 2 == 0 ? users : users.reversed()
                        return try await Self.save(order.map { QuizRulesTests.answer($0, "q\(question)", points: 1, ms: 10) }, on: database)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let totals = try await Self.totals(database)
            for user in users {
                #expect(totals[user] == [24, 24, 240, 24, 24, 240], "\(user)")
                // The write with the highest revision carries the final totals (what Redis keeps).
                let last = saves.flatMap(\.board.improved).filter { $0.userID == user }.max { ($0.revision ?? 0) < ($1.revision ?? 0) }
                #expect(last?.score == 24 && last?.achievedAtMs == 240)
            }
        }
    }
}
