import Storage
import Codec

/// Writes events to the partitioned `events` table and applies `game_ended` scores, in the
/// caller's transaction, exactly once per event id.
///
/// Dedupe goes through `event_ids` (a unique key on a partitioned table would have to include
/// the partition key): the batch's ids are inserted there with ON CONFLICT DO NOTHING, and
/// only the ids that came back are written to `events` and applied, so a duplicate delivery
/// (a retried job, a client resend) changes nothing. The same events update the analytics
/// rollups (`EventRollups.record`), in the same transaction.
enum EventStore {
    struct Outcome {
        /// Ids written now (first time seen).
        var inserted: Set<ExactID>
        /// Scores that improved a board; publish them after the commit.
        var scores: RecordedScores
    }

    static func persist(_ events: [Tally_V1_Event], receivedAtMs: Int64, rollups: EventRollups, on connection: PostgresConnection) async throws -> Outcome {
        // The first occurrence of an id in the batch wins.
        var seen = Set<ExactID>()
        let unique = events.filter { seen.insert(ExactID($0.id)).inserted }
        let fresh = try await connection.query(
            """
            INSERT INTO event_ids (event_id, received_at)
            SELECT id, to_timestamp($2 / 1000.0) FROM unnest($1::text[]) AS u(id)
            ON CONFLICT DO NOTHING RETURNING event_id
            """,
            [PostgresArray(unique.map(\.id)), receivedAtMs])
        var inserted = Set<ExactID>()
        for row in fresh { inserted.insert(ExactID(try row.decode(0, as: String.self))) }
        let toWrite = unique.filter { inserted.contains(ExactID($0.id)) }
        guard !toWrite.isEmpty else { return Outcome(inserted: [], scores: RecordedScores()) }

        // Scores of game_ended: the global board, and the tournament's when it counts there.
        var updates: [ScoreUpdate] = []
        var owners: [Int] = []  // index into toWrite of each update
        for (index, event) in toWrite.enumerated() where event.type == "game_ended" {
            let at = event.clientTimeMs > 0 ? event.clientTimeMs : receivedAtMs
            updates.append(ScoreUpdate(board: .global, userID: event.userId, score: event.score, achievedAtMs: at))
            owners.append(index)
            if !event.tournamentId.isEmpty {
                updates.append(ScoreUpdate(board: .tournament(event.tournamentId), userID: event.userId, score: event.score, achievedAtMs: at))
                owners.append(index)
            }
        }
        let (admitted, refused) = try await Tournaments.admit(updates, on: connection)
        var errors: [ExactID: String] = [:]
        for (index, reason) in refused { errors[ExactID(toWrite[owners[index]].id)] = reason }
        let scores = try await LeaderboardStore.record(admitted, on: connection)

        _ = try await connection.query(
            """
            INSERT INTO events (event_id, type, user_id, client_time, received_at, score, game_mode, tournament_id,
                                duration_ms, level, attributes, processed_at, processing_error)
            SELECT id, type, user_id, to_timestamp(client_ms / 1000.0), to_timestamp($12 / 1000.0), score,
                   nullif(game_mode, ''), nullif(tournament_id, ''), duration_ms, level, attributes::jsonb, now(), nullif(error, '')
            FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                        $8::bigint[], $9::int[], $10::text[], $11::text[])
              AS u(id, type, user_id, client_ms, score, game_mode, tournament_id, duration_ms, level, attributes, error)
            """,
            [PostgresArray(toWrite.map(\.id)), PostgresArray(toWrite.map(\.type)), PostgresArray(toWrite.map(\.userId)),
             PostgresArray(toWrite.map(\.clientTimeMs)), PostgresArray(toWrite.map { $0.type == "game_ended" ? Optional($0.score) : nil }),
             PostgresArray(toWrite.map(\.gameMode)), PostgresArray(toWrite.map(\.tournamentId)),
             PostgresArray(toWrite.map(\.durationMs)), PostgresArray(toWrite.map { Int($0.level) }),
             PostgresArray(toWrite.map { AttributesJSON.object($0.attributes) }), PostgresArray(toWrite.map { errors[ExactID($0.id)] ?? "" }),
             receivedAtMs])
        try await rollups.record(toWrite, receivedAtMs: receivedAtMs, on: connection)
        return Outcome(inserted: inserted, scores: scores)
    }
}
