public import Storage
public import Codec
import Foundation

/// `Recent`: the newest stored events with their processing state, from Postgres (the read
/// replica when configured). Events still in the queue are not stored yet and not listed.
public struct RecentEvents: Sendable {
    let database: PostgresDatabase

    public init(database: PostgresDatabase) {
        self.database = database
    }

    public func list(limit: Int, user: String?, type: String?, deadline: ContinuousClock.Instant? = nil) async throws -> [Tally_V1_RecordedEvent] {
        try await database.read(deadline: deadline) { connection in
            let rows = try await connection.query(
                """
                SELECT event_id, type, user_id, (extract(epoch FROM client_time) * 1000)::bigint, coalesce(score, 0),
                       coalesce(game_mode, ''), coalesce(tournament_id, ''), coalesce(duration_ms, 0), coalesce(level, 0),
                       attributes::text, (extract(epoch FROM received_at) * 1000)::bigint,
                       processed_at IS NOT NULL, coalesce(processing_error, '')
                FROM events
                WHERE ($2 = '' OR user_id = $2) AND ($3 = '' OR type = $3)
                ORDER BY received_at DESC LIMIT $1
                """,
                [limit, user ?? "", type ?? ""])
            return try rows.map { row in
                var event = Tally_V1_Event()
                event.id = try row.decode(0, as: String.self)
                event.type = try row.decode(1, as: String.self)
                event.userId = try row.decode(2, as: String.self)
                event.clientTimeMs = try row.decode(3, as: Int64.self)
                event.score = try row.decode(4, as: Int64.self)
                event.gameMode = try row.decode(5, as: String.self)
                event.tournamentId = try row.decode(6, as: String.self)
                event.durationMs = try row.decode(7, as: Int64.self)
                event.level = Int32(try row.decode(8, as: Int.self))
                event.attributes = Self.attributes(try row.decode(9, as: String.self))
                var recorded = Tally_V1_RecordedEvent()
                recorded.event = event
                recorded.receivedAtMs = try row.decode(10, as: Int64.self)
                let error = try row.decode(12, as: String.self)
                recorded.error = error
                recorded.state = !(try row.decode(11, as: Bool.self)) ? .queued : error.isEmpty ? .processed : .failed
                return recorded
            }
        }
    }

    private static func attributes(_ json: String) -> [String: String] {
        guard let data = json.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: String]
        else { return [:] }
        return object
    }
}
