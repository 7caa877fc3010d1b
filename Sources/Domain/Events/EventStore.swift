import Storage
import Codec
import Foundation

/// Writes events to the partitioned `events` table and applies `game_ended` scores, in the
/// caller's transaction, exactly once per event id.
///
/// The batches (one or many queued jobs) go into a temporary staging table with binary COPY
/// (no text for the server to parse), and one statement moves them on: their ids into
/// `event_ids` (ON CONFLICT DO NOTHING: a unique key on a partitioned table would have to
/// include the partition key) and only the rows whose ids came back into `events`. So a
/// duplicate delivery (a retried job, a client resend, two workers holding the same job after a
/// lease expired) changes nothing: the second writer waits on the first one's uncommitted ids
/// and finds them taken once it commits. Ids go into `event_ids` in id order, so two
/// transactions with overlapping ids wait for each other instead of deadlocking. The same
/// stored events update the analytics rollups (`EventRollups.record`), in the same transaction.
enum EventStore {
    struct Outcome {
        /// Ids written now (first time seen).
        var inserted: Set<ExactID>
        /// Scores that improved a board; publish them after the commit.
        var scores: RecordedScores
    }

    /// An event with the time Tally received its batch.
    struct Received {
        var event: Tally_V1_Event
        var receivedAtMs: Int64
    }

    /// The staging table: one per connection (created on its first group), emptied at every commit.
    private static let staging = """
        CREATE TEMP TABLE IF NOT EXISTS event_staging (
            event_id text NOT NULL, type text NOT NULL, user_id text NOT NULL, client_time timestamptz NOT NULL,
            received_at timestamptz NOT NULL, score bigint, game_mode text, tournament_id text, duration_ms bigint,
            level integer, attributes jsonb NOT NULL
        ) ON COMMIT DELETE ROWS
        """

    private static let stagingColumns = [
        "event_id", "type", "user_id", "client_time", "received_at", "score", "game_mode", "tournament_id", "duration_ms",
        "level", "attributes",
    ]

    static func persist(_ events: [Tally_V1_Event], receivedAtMs: Int64, rollups: EventRollups,
                        on connection: PostgresConnection) async throws -> Outcome {
        try await persist([EventBatchPayload(receivedAtMs: receivedAtMs, events: events)], rollups: rollups, on: connection)
    }

    static func persist(_ batches: [EventBatchPayload], rollups: EventRollups, on connection: PostgresConnection) async throws -> Outcome {
        // The first occurrence of an id wins, within a batch and across the batches.
        var seen = Set<ExactID>()
        var unique: [Received] = []
        unique.reserveCapacity(batches.reduce(0) { $0 + $1.events.count })
        for batch in batches {
            for event in batch.events where seen.insert(ExactID(event.id)).inserted {
                unique.append(Received(event: event, receivedAtMs: batch.receivedAtMs))
            }
        }
        guard !unique.isEmpty else { return Outcome(inserted: [], scores: RecordedScores()) }

        try await connection.prepareSession("event_staging", staging)
        _ = try await connection.copyFrom(table: "event_staging", columns: stagingColumns, rows: unique) { received, row in
            let event = received.event
            let scored = event.type == "game_ended"
            row.append(event.id)
            row.append(event.type)
            row.append(event.userId)
            row.append(Date(timeIntervalSince1970: Double(event.clientTimeMs) / 1000))
            row.append(Date(timeIntervalSince1970: Double(received.receivedAtMs) / 1000))
            row.append(scored ? Optional(event.score) : nil)
            row.append(event.gameMode.isEmpty ? nil : Optional(event.gameMode))
            row.append(event.tournamentId.isEmpty ? nil : Optional(event.tournamentId))
            row.append(event.durationMs)
            row.append(event.level)
            row.append(AttributesJSON.object(event.attributes))
        }
        let fresh = try await connection.query(
            """
            WITH fresh AS (
              INSERT INTO event_ids (event_id, received_at)
              SELECT event_id, received_at FROM event_staging ORDER BY event_id
              ON CONFLICT DO NOTHING RETURNING event_id
            )
            INSERT INTO events (event_id, type, user_id, client_time, received_at, score, game_mode, tournament_id,
                                duration_ms, level, attributes, processed_at)
            SELECT s.event_id, s.type, s.user_id, s.client_time, s.received_at, s.score, s.game_mode, s.tournament_id,
                   s.duration_ms, s.level, s.attributes, now()
            FROM event_staging s JOIN fresh USING (event_id)
            RETURNING event_id
            """)
        var inserted = Set<ExactID>()
        inserted.reserveCapacity(fresh.count)
        for row in fresh { inserted.insert(ExactID(try row.decode(0, as: String.self))) }
        // Every event stored by this transaction, each once: what the aggregates of this
        // transaction count.
        let stored = unique.filter { inserted.contains(ExactID($0.event.id)) }
        guard !stored.isEmpty else { return Outcome(inserted: [], scores: RecordedScores()) }

        try await rollups.record(stored, on: connection)
        let scores = try await applyScores(of: stored, on: connection)
        return Outcome(inserted: inserted, scores: scores)
    }

    /// Scores of the stored `game_ended` events: the global board, and the tournament's when it
    /// counts there; a tournament score refused is the event's processing error.
    private static func applyScores(of stored: [Received], on connection: PostgresConnection) async throws -> RecordedScores {
        var updates: [ScoreUpdate] = []
        var owners: [Int] = []  // index into stored of each update
        for (index, received) in stored.enumerated() where received.event.type == "game_ended" {
            let event = received.event
            let at = event.clientTimeMs > 0 ? event.clientTimeMs : received.receivedAtMs
            updates.append(ScoreUpdate(board: .global, userID: event.userId, score: event.score, achievedAtMs: at))
            owners.append(index)
            if !event.tournamentId.isEmpty {
                updates.append(ScoreUpdate(board: .tournament(event.tournamentId), userID: event.userId, score: event.score, achievedAtMs: at))
                owners.append(index)
            }
        }
        guard !updates.isEmpty else { return RecordedScores() }
        let (admitted, refused) = try await Tournaments.admit(updates, on: connection)
        if !refused.isEmpty {
            let errors = refused.sorted { $0.key < $1.key }.map { (id: stored[owners[$0.key]].event.id, reason: $0.value) }
            // Found through the staged row's user and time: the index on events that leads there.
            _ = try await connection.query(
                """
                UPDATE events e SET processing_error = u.reason
                FROM unnest($1::text[], $2::text[]) AS u(id, reason) JOIN event_staging s ON s.event_id = u.id
                WHERE e.user_id = s.user_id AND e.received_at = s.received_at AND e.event_id = s.event_id
                """,
                [PostgresArray(errors.map(\.id)), PostgresArray(errors.map(\.reason))])
        }
        return try await LeaderboardStore.record(admitted, on: connection)
    }
}
