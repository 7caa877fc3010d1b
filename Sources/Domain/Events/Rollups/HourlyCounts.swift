import Storage

/// Events per type per UTC hour in `event_counts` (migration 0012), sharded against hot rows.
///
/// Every writer adds to shard `1 + backend pid mod shards` of a row: concurrent workers (each
/// on its own connection) then rarely wait for each other's row locks, which are held until
/// commit. Rows are upserted in (hour, type) order, so two writers that do share a shard lock
/// in the same order and cannot deadlock. `fold` moves past hours' shards into shard 0, which
/// only maintenance writes, so reads stay one row per hour and type.
enum HourlyCounts {
    struct Key: Hashable {
        /// Hours since the epoch (UTC).
        var hour: Int64
        var type: String
    }

    /// Adds `counts` to the rows of this connection's shard.
    static func add(_ counts: [Key: Int64], shards: Int, on connection: PostgresConnection) async throws {
        guard !counts.isEmpty else { return }
        let rows = Array(counts)
        _ = try await connection.query(
            """
            INSERT INTO event_counts (hour, type, shard, events)
            SELECT to_timestamp(h * 3600), t, 1 + pg_backend_pid() % $4, n
            FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(h, t, n)
            ORDER BY h, t COLLATE "C"
            ON CONFLICT (hour, type, shard) DO UPDATE SET events = event_counts.events + excluded.events
            """,
            [PostgresArray(rows.map(\.key.hour)), PostgresArray(rows.map(\.key.type)), PostgresArray(rows.map(\.value)), shards])
    }

    /// Events per bucket and type over `[fromHour, toHour)`, buckets as `bucket(hour)` maps them
    /// (`types` empty: all).
    static func read(fromHour: Int64, toHour: Int64, types: [String], on connection: PostgresConnection) async throws -> [(hour: Int64, type: String, events: Int64)] {
        let rows = try await connection.query(
            """
            SELECT (extract(epoch FROM hour) / 3600)::bigint, type, sum(events)::bigint
            FROM event_counts
            WHERE hour >= to_timestamp($1 * 3600) AND hour < to_timestamp($2 * 3600)
              AND (cardinality($3::text[]) = 0 OR type = ANY($3::text[]))
            GROUP BY hour, type
            """,
            [fromHour, toHour, PostgresArray(types)])
        return try rows.map { row in
            (hour: try row.decode(0, as: Int64.self), type: try row.decode(1, as: String.self), events: try row.decode(2, as: Int64.self))
        }
    }

    /// Folds the shards of hours before `beforeHour` into shard 0. Rows a writer holds (a late
    /// event's) are skipped, never waited for, and folded on a later pass; the caller holds
    /// the maintenance lock, so shard 0 has one writer. Returns the rows folded.
    static func fold(beforeHour: Int64, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query(
            """
            WITH taken AS (
                DELETE FROM event_counts c
                USING (SELECT hour, type, shard FROM event_counts
                       WHERE shard > 0 AND hour < to_timestamp($1 * 3600) FOR UPDATE SKIP LOCKED) l
                WHERE c.hour = l.hour AND c.type = l.type AND c.shard = l.shard
                RETURNING c.hour, c.type, c.events
            ), folded AS (
                INSERT INTO event_counts (hour, type, shard, events)
                SELECT hour, type, 0, sum(events) FROM taken GROUP BY hour, type ORDER BY hour, type COLLATE "C"
                ON CONFLICT (hour, type, shard) DO UPDATE SET events = event_counts.events + excluded.events
            )
            SELECT count(*) FROM taken
            """,
            [beforeHour])
        return try rows.first.map { try $0.decode(0, as: Int.self) } ?? 0
    }

    /// Deletes the hours before `beforeHour`; returns the rows deleted.
    static func prune(beforeHour: Int64, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query(
            """
            WITH gone AS (DELETE FROM event_counts WHERE hour < to_timestamp($1 * 3600) RETURNING 1)
            SELECT count(*) FROM gone
            """,
            [beforeHour])
        return try rows.first.map { try $0.decode(0, as: Int.self) } ?? 0
    }
}
