import Storage
import Codec

/// Which script writes an update into its board, and the refusal of latest-score boards by the
/// best-score write API.
extension LeaderboardStore {
    /// Runs each update's script (a max-merge, or a replace by revision on a latest-score
    /// board), all of one script in one pipelined write; replies in the order of `updates`.
    ///
    /// One pipelined write per script: with Redis' AOF fsync on each write pass, merges awaited
    /// one by one would cost a job a round trip (an fsync) per score. A batch holds one kind
    /// in practice (events write best-score boards, quizzes their own), so it is one write.
    /// With `REDIS_MIN_REPLICAS_ACK` (a cluster), each merge also waits for its replicas: the
    /// caller deletes the pending merge next, and a master dying with an unreplicated merge
    /// would leave the board behind with nothing left to repair it from.
    func runMergeScripts(_ updates: [ScoreUpdate]) async throws -> [RESPValue] {
        var best: [Int] = []
        var latest: [Int] = []
        for index in updates.indices {
            if updates[index].board.keepsLatest { latest.append(index) } else { best.append(index) }
        }
        let bestReplies = try await redis.runPipelinedAcknowledged(LeaderboardScripts.submit, calls: best.map { index in
            let update = updates[index]
            let keys = keys(update.board)
            return (keys: [keys.z, keys.m, keys.ready, keys.building, keys.nextZ, keys.nextM, keys.version],
                    arguments: [RedisArgument(update.userID), RedisArgument(update.score), RedisArgument(update.member.encoded)])
        })
        let latestReplies = try await redis.runPipelinedAcknowledged(LeaderboardScripts.submitLatest, calls: latest.map { index in
            let update = updates[index]
            let keys = keys(update.board)
            return (keys: [keys.z, keys.m, keys.revisions, keys.ready, keys.building, keys.nextZ, keys.nextM, keys.nextRevisions, keys.version],
                    arguments: [RedisArgument(update.userID), RedisArgument(update.score), RedisArgument(update.member.encoded),
                                RedisArgument(update.revision ?? 0)])
        })
        var replies = [RESPValue](repeating: .null, count: updates.count)
        for (index, reply) in zip(best, bestReplies) { replies[index] = reply }
        for (index, reply) in zip(latest, latestReplies) { replies[index] = reply }
        return replies
    }

    /// Latest-score boards are written only by their owner's transaction (a quiz's answers,
    /// `QuizService`), which takes the row's revision; a best-score write there would bypass it.
    static func refuseLatestBoards(_ updates: [ScoreUpdate]) throws(RPCError) {
        guard let update = updates.first(where: { $0.board.keepsLatest }) else { return }
        throw RPCError(.invalidArgument, "board_id: \(update.board) holds each user's latest quiz score and is written by QuizService, not by Submit")
    }
}
