import Storage
import Units

/// The `notifications` outbox's statements, each one round trip.
enum NotificationStore {
    /// Inserts the messages in one statement; ids already recorded are left as they are.
    static func insert(_ messages: [NotificationMessage], on connection: PostgresConnection) async throws {
        guard !messages.isEmpty else { return }
        _ = try await connection.query(
            """
            INSERT INTO notifications (id, destination, kind, body)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
            ON CONFLICT (id) DO NOTHING
            """,
            [PostgresArray(messages.map(\.id)), PostgresArray(messages.map(\.destination)),
             PostgresArray(messages.map(\.kind)), PostgresArray(messages.map(\.body))])
    }

    /// Notes that jobs for these rows were queued now (the sweeper leaves them be for a while).
    static func markQueued(_ ids: [String], on connection: PostgresConnection) async throws {
        guard !ids.isEmpty else { return }
        _ = try await connection.query(
            "UPDATE notifications SET queued_at = clock_timestamp() WHERE id = ANY($1::text[]) AND status = 'pending'",
            [PostgresArray(ids)])
    }

    /// The message, if it is still to be delivered (nil: unknown, delivered or dead).
    static func pending(id: String, on connection: PostgresConnection) async throws -> NotificationMessage? {
        let rows = try await connection.query(
            "SELECT destination, kind, body FROM notifications WHERE id = $1 AND status = 'pending'", [id])
        guard let row = rows.first else { return nil }
        return NotificationMessage(id: id, destination: try row.decode(0), kind: try row.decode(1), body: try row.decode(2))
    }

    /// Records one send's result: delivered, dead (with why), or still pending (with the
    /// error of this try, if it failed). Only a pending row changes.
    static func recordSend(id: String, status: String, error: String?, on connection: PostgresConnection) async throws {
        _ = try await connection.query(
            """
            UPDATE notifications SET attempts = attempts + 1, status = $2, last_error = coalesce($3, last_error),
                delivered_at = CASE WHEN $2 = 'delivered' THEN clock_timestamp() END
            WHERE id = $1 AND status = 'pending'
            """, [id, status, error])
    }

    /// Marks a row dead without a send (its job was dead-lettered before the row said so).
    static func markDead(id: String, error: String, on connection: PostgresConnection) async throws {
        _ = try await connection.query(
            "UPDATE notifications SET status = 'dead', last_error = $2 WHERE id = $1 AND status = 'pending'", [id, error])
    }

    /// Pending rows queued, or if never queued recorded, longer than `olderThan` ago, oldest
    /// mark first. (A row just recorded is left to its `dispatch` for that long.)
    static func unqueued(olderThan: Duration, limit: Int, on connection: PostgresConnection) async throws -> [String] {
        let rows = try await connection.query(
            """
            SELECT id FROM notifications
            WHERE status = 'pending' AND coalesce(queued_at, created_at) < clock_timestamp() - $1::float8 * interval '1 millisecond'
            ORDER BY coalesce(queued_at, created_at) LIMIT $2
            """, [olderThan.milliseconds, limit])
        return try rows.map { try $0.decode(0) }
    }

    /// Rows per status.
    static func counts(on connection: PostgresConnection) async throws -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for row in try await connection.query("SELECT status, count(*) FROM notifications GROUP BY 1") {
            counts[try row.decode(0)] = try row.decode(1)
        }
        return counts
    }
}
