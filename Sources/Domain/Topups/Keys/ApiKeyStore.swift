import Foundation
import Storage

/// The SQL of `api_keys` (migration 0006).
enum ApiKeyStore {
    static let columns = """
        id, customer_id, name, rate_per_min, prefix, created_at, last_used_at, revoked_at, expires_at
        """

    static func record(_ row: PostgresRow) throws -> ApiKeyRecord {
        ApiKeyRecord(
            id: try row.decode(0), customerID: try row.decode(1), name: try row.decode(2),
            ratePerMinute: try row.decode(3, as: Int?.self), prefix: try row.decode(4), createdAt: try row.decode(5),
            lastUsedAt: try row.decode(6, as: Date?.self), revokedAt: try row.decode(7, as: Date?.self),
            expiresAt: try row.decode(8, as: Date?.self))
    }

    static func insert(id: String, customer: String, name: String, ratePerMinute: Int?, secret: ApiKeySecret,
                       on connection: PostgresConnection) async throws -> ApiKeyRecord {
        let rows = try await connection.query(
            """
            INSERT INTO api_keys (id, customer_id, name, key_hash, prefix, rate_per_min)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING \(columns)
            """,
            [id, customer, name, PostgresBytes(secret.hash), secret.displayPrefix, ratePerMinute])
        return try record(rows[0])
    }

    /// The key with this hash if it is valid now (not revoked, not expired).
    static func valid(hash: [UInt8], on connection: PostgresConnection) async throws -> ResolvedApiKey? {
        let rows = try await connection.query(
            """
            SELECT id, customer_id, rate_per_min, expires_at FROM api_keys
            WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > clock_timestamp())
            """,
            [PostgresBytes(hash)])
        guard let row = rows.first else { return nil }
        return ResolvedApiKey(keyID: try row.decode(0), customerID: try row.decode(1), ratePerMinute: try row.decode(2, as: Int?.self),
                              expiresAt: try row.decode(3, as: Date?.self))
    }

    static func list(customer: String?, on connection: PostgresConnection) async throws -> [ApiKeyRecord] {
        let rows = try await connection.query(
            "SELECT \(columns) FROM api_keys WHERE $1::text IS NULL OR customer_id = $1 ORDER BY customer_id, created_at, id",
            [customer])
        return try rows.map(record)
    }

    static func revoke(id: String, on connection: PostgresConnection) async throws -> ApiKeyRecord? {
        let rows = try await connection.query(
            """
            UPDATE api_keys SET revoked_at = coalesce(revoked_at, clock_timestamp()) WHERE id = $1
            RETURNING \(columns)
            """,
            [id])
        return try rows.first.map(record)
    }

    /// Lets the key expire after `overlap` (sooner if it already expires sooner).
    static func expire(id: String, after overlap: Duration, on connection: PostgresConnection) async throws -> ApiKeyRecord? {
        let rows = try await connection.query(
            """
            UPDATE api_keys SET expires_at = least(coalesce(expires_at, 'infinity'),
                                                   clock_timestamp() + $2::double precision * interval '1 millisecond')
            WHERE id = $1 AND revoked_at IS NULL RETURNING \(columns)
            """,
            [id, overlap.milliseconds])
        return try rows.first.map(record)
    }

    static func find(id: String, on connection: PostgresConnection) async throws -> ApiKeyRecord? {
        try await connection.query("SELECT \(columns) FROM api_keys WHERE id = $1", [id]).first.map(record)
    }

    /// Records when keys were last used: one statement for every key used since the last flush.
    static func touch(_ used: [String: Date], on connection: PostgresConnection) async throws {
        guard !used.isEmpty else { return }
        _ = try await connection.query(
            """
            UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.at)
            FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id
            """,
            [PostgresArray(Array(used.keys)), PostgresArray(Array(used.values))])
    }
}
