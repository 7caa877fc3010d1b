public import Storage
import Codec

/// Creating and joining tournaments, and deciding which scores count on their boards.
///
/// Joins and automatic joins lock the tournament row (`FOR UPDATE`), so concurrent joins on
/// any number of instances never exceed `maxParticipants`.
public struct Tournaments: Sendable {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    public func create(_ tournament: Tournament, deadline: ContinuousClock.Instant? = nil) async throws -> Tournament {
        try tournament.validate()
        do {
            _ = try await database.withConnection(deadline: deadline) { connection in
                try await connection.query(
                    """
                    INSERT INTO tournaments (id, name, starts_at, ends_at, max_participants, join_required)
                    VALUES ($1, $2, to_timestamp($3 / 1000.0), to_timestamp($4 / 1000.0), $5, $6)
                    """,
                    [tournament.id, tournament.name, tournament.startsAtMs, tournament.endsAtMs, tournament.maxParticipants, tournament.joinRequired])
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            throw RPCError(.alreadyExists, "tournament \(tournament.id) already exists")
        }
        var created = tournament
        created.participants = 0
        return created
    }

    /// Joins a user; `joined` is false when they had already joined (idempotent).
    public func join(_ tournamentID: String, user: String, nowMs: Int64, deadline: ContinuousClock.Instant? = nil) async throws -> (Tournament, joined: Bool) {
        try await database.withTransaction(deadline: deadline) { connection in
            guard var tournament = try await Self.lockedTournament(tournamentID, on: connection) else {
                throw RPCError(.notFound, "tournament \(tournamentID) does not exist")
            }
            guard nowMs < tournament.endsAtMs else {
                throw RPCError(.failedPrecondition, "tournament \(tournamentID) has ended")
            }
            let joined = try await Self.admit(user, to: &tournament, on: connection)
            guard let joined else {
                throw RPCError(.failedPrecondition, "tournament \(tournamentID) is full (\(tournament.maxParticipants ?? 0) participants)")
            }
            return (tournament, joined)
        }
    }

    /// Keeps the tournament scores that count: within the window, by a participant (joined,
    /// or joined now when joining is automatic and places are left). Returns the reason for
    /// each refused update's index. Runs in the caller's transaction.
    static func admit(_ updates: [ScoreUpdate], on connection: PostgresConnection) async throws -> (admitted: [ScoreUpdate], refused: [Int: String]) {
        var admitted: [ScoreUpdate] = []
        var refused: [Int: String] = [:]
        var tournaments: [ExactID: Tournament?] = [:]
        for (index, update) in updates.enumerated() {
            guard case .tournament(let id) = update.board else {
                admitted.append(update)
                continue
            }
            if tournaments[ExactID(id)] == nil { tournaments[ExactID(id)] = .some(try await lockedTournament(id, on: connection)) }
            guard var tournament = tournaments[ExactID(id)] ?? nil else {
                refused[index] = "tournament \(id) does not exist"
                continue
            }
            guard update.achievedAtMs >= tournament.startsAtMs, update.achievedAtMs < tournament.endsAtMs else {
                refused[index] = "score outside tournament \(id)'s window"
                continue
            }
            if tournament.joinRequired {
                let member = try await connection.query(
                    "SELECT 1 FROM tournament_participants WHERE tournament_id = $1 AND user_id = $2", [id, update.userID])
                guard !member.isEmpty else {
                    refused[index] = "user has not joined tournament \(id)"
                    continue
                }
            } else if try await admit(update.userID, to: &tournament, on: connection) == nil {
                refused[index] = "tournament \(id) is full"
                continue
            }
            tournaments[ExactID(id)] = .some(tournament)
            admitted.append(update)
        }
        return (admitted, refused)
    }

    /// Adds the user unless full: true when added, false when already in, nil when full.
    private static func admit(_ user: String, to tournament: inout Tournament, on connection: PostgresConnection) async throws -> Bool? {
        let existing = try await connection.query(
            "SELECT 1 FROM tournament_participants WHERE tournament_id = $1 AND user_id = $2", [tournament.id, user])
        if !existing.isEmpty { return false }
        if let max = tournament.maxParticipants, tournament.participants >= max { return nil }
        _ = try await connection.query(
            "INSERT INTO tournament_participants (tournament_id, user_id) VALUES ($1, $2)", [tournament.id, user])
        tournament.participants += 1
        return true
    }

    private static func lockedTournament(_ id: String, on connection: PostgresConnection) async throws -> Tournament? {
        let rows = try await connection.query(
            """
            SELECT t.id, t.name, (extract(epoch FROM t.starts_at) * 1000)::bigint, (extract(epoch FROM t.ends_at) * 1000)::bigint,
                   t.max_participants, t.join_required,
                   (SELECT count(*) FROM tournament_participants p WHERE p.tournament_id = t.id)
            FROM tournaments t WHERE t.id = $1 FOR UPDATE
            """, [id])
        guard let row = rows.first else { return nil }
        return Tournament(
            id: try row.decode(0, as: String.self), name: try row.decode(1, as: String.self),
            startsAtMs: try row.decode(2, as: Int64.self), endsAtMs: try row.decode(3, as: Int64.self),
            maxParticipants: try row.decode(4, as: Int?.self), joinRequired: try row.decode(5, as: Bool.self),
            participants: try row.decode(6, as: Int.self))
    }
}
