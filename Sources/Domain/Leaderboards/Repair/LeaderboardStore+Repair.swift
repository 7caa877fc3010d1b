import Storage
/// Repairing boards whose Redis copy missed committed improvements (`leaderboard_pending_merges`).
extension LeaderboardStore {
    /// Pending merges claimed per repair transaction.
    static let repairChunk = 200

    /// One pass: deletes the merges confirmed here, reads which boards are behind, and when
    /// any are, merges their overdue improvements again and reads them once more. Returns how
    /// many pending merges it repaired.
    @discardableResult
    func sweep() async -> Int {
        let started = ContinuousClock.now
        let confirmed = behind.takeConfirmed()
        if !confirmed.isEmpty {
            // Rows left by a failed delete are merged again once overdue: that changes nothing.
            do {
                try await database.withConnection { try await PendingMerges.delete(confirmed, on: $0) }
            } catch {
                logger.debug("confirmed leaderboard merges not deleted", metadata: ["error": "\(error)"])
            }
        }
        do {
            let overdue = try await readBoardsBehind(started: started)
            guard !overdue.isEmpty else { return 0 }
            let repaired = try await repairOverdue()
            if repaired > 0 { logger.notice("leaderboard merges repaired from Postgres", metadata: [
                "boards": "\(overdue.map(\.description).sorted())", "pending_merges": "\(repaired)",
            ]) }
            _ = try await readBoardsBehind(started: started)
            return repaired
        } catch {
            logger.debug("leaderboard repair failed; tried again next sweep", metadata: ["error": "\(error)"])
            behind.swept(overdue: nil, started: started)
            return 0
        }
    }

    /// Reads which boards have overdue pending merges into `behind`, and returns them.
    @discardableResult
    func readBoardsBehind(started: ContinuousClock.Instant = .now) async throws -> Set<BoardID> {
        let overdue = try await database.withConnection {
            try await PendingMerges.overdueBoards(olderThan: configuration.repairAfter, on: $0)
        }
        behind.swept(overdue: overdue, started: started)
        return overdue
    }

    /// Merges the scores named by overdue pending merges into Redis and deletes those
    /// merges, a locked chunk per transaction (other instances skip it); returns how many.
    func repairOverdue() async throws -> Int {
        var repaired = 0
        while true {
            let claimed = try await database.withTransaction { connection in
                let claim = try await PendingMerges.claimOverdue(
                    olderThan: configuration.repairAfter, limit: Self.repairChunk, on: connection)
                guard !claim.ids.isEmpty else { return 0 }
                try await merge(try await PendingMerges.currentScores(of: claim, on: connection))
                try await PendingMerges.delete(claim.ids, on: connection)
                return claim.ids.count
            }
            repaired += claimed
            if claimed < Self.repairChunk { return repaired }
        }
    }
}
