import Foundation
import Storage

/// The SQL of `topups`, `topup_idempotency_keys` and `topup_attempts` (migration 0007).
enum TopupStore {
    static let columns = columns(of: "topups")

    /// The columns `topup(_:)` decodes, qualified by `table` (a name or an alias).
    static func columns(of table: String) -> String {
        let t = table + "."
        return """
            \(t)id, \(t)customer_id, \(t)idempotency_key, \(t)phone_number, \(t)amount_minor_units, \(t)currency, \(t)carrier,
            \(t)state, \(t)failure_reason, \(t)provider_reference, \(t)attempts,
            (extract(epoch FROM \(t)created_at) * 1000)::int8, (extract(epoch FROM \(t)updated_at) * 1000)::int8
            """
    }

    static func topup(_ row: PostgresRow, from first: Int = 0) throws -> Topup {
        let state: String = try row.decode(first + 7)
        return Topup(
            id: try row.decode(first), customerID: try row.decode(first + 1), idempotencyKey: try row.decode(first + 2),
            phoneNumber: try row.decode(first + 3), amountMinorUnits: try row.decode(first + 4), currency: try row.decode(first + 5),
            carrier: try row.decode(first + 6), state: Topup.State(rawValue: state) ?? .pending,
            failureReason: try row.decode(first + 8), providerReference: try row.decode(first + 9), attempts: try row.decode(first + 10),
            createdAtMs: try row.decode(first + 11), updatedAtMs: try row.decode(first + 12))
    }

    /// Thrown when a key conflicted but its top-up cannot be found (its first request rolled
    /// back after the conflict): the caller retries.
    struct KeyVanished: Error {}

    /// Inserts the top-ups and their idempotency keys in one statement (one commit), in key
    /// order so concurrent batches lock keys in the same order. A key the customer used before
    /// (or earlier in this batch) inserts nothing and finds that top-up instead (`replayed`); a
    /// batch whose key is still being inserted by another waits on the key's primary key for
    /// its commit. Returns one result per request, in order; nil in the vanishing case only.
    static func create(_ requests: [TopupCreations.Request], on connection: PostgresConnection) async throws -> [(topup: Topup, replayed: Bool)?] {
        let rows = try await connection.query(
            """
            WITH input AS (
              SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[])
                AS i(id, customer_id, idempotency_key, phone_number, amount_minor_units, currency, carrier)
            ), key AS (
              INSERT INTO topup_idempotency_keys (customer_id, idempotency_key, topup_id)
              SELECT customer_id, idempotency_key, id FROM input ORDER BY customer_id, idempotency_key
              ON CONFLICT DO NOTHING RETURNING topup_id
            )
            INSERT INTO topups (id, customer_id, idempotency_key, phone_number, amount_minor_units, currency, carrier)
            SELECT i.id, i.customer_id, i.idempotency_key, i.phone_number, i.amount_minor_units, i.currency, i.carrier
            FROM input i JOIN key k ON k.topup_id = i.id RETURNING \(columns)
            """,
            [PostgresArray(requests.map(\.id)), PostgresArray(requests.map(\.customer)), PostgresArray(requests.map(\.order.idempotencyKey)),
             PostgresArray(requests.map(\.order.phoneNumber)), PostgresArray(requests.map(\.order.amountMinorUnits)),
             PostgresArray(requests.map(\.order.currency)), PostgresArray(requests.map(\.order.carrier))])
        var created: [String: Topup] = [:]
        for row in rows {
            let topup = try topup(row)
            created[topup.id] = topup
        }
        let replays = requests.filter { created[$0.id] == nil }
        var existing: [KeyOf: Topup] = [:]
        if !replays.isEmpty {
            let found = try await connection.query(
                """
                SELECT \(columns(of: "t")) FROM unnest($1::text[], $2::text[]) AS m(customer_id, idempotency_key)
                JOIN topup_idempotency_keys k USING (customer_id, idempotency_key) JOIN topups t ON t.id = k.topup_id
                """,
                [PostgresArray(replays.map(\.customer)), PostgresArray(replays.map(\.order.idempotencyKey))])
            for row in found {
                let topup = try topup(row)
                existing[KeyOf(customer: topup.customerID, key: topup.idempotencyKey)] = topup
            }
        }
        return requests.map { request in
            if let topup = created[request.id] { return (topup, false) }
            return existing[KeyOf(customer: request.customer, key: request.order.idempotencyKey)].map { ($0, true) }
        }
    }

    private struct KeyOf: Hashable {
        var customer: String
        var key: String
    }

    static func find(id: String, on connection: PostgresConnection) async throws -> Topup? {
        try await connection.query("SELECT \(columns) FROM topups WHERE id = $1", [id]).first.map { try topup($0) }
    }

    /// A page of one customer's top-ups, newest first, after `cursor` (created_at text, id).
    static func list(customer: String, filter: TopupFilter, after cursor: (createdAt: String, id: String)?, limit: Int,
                     on connection: PostgresConnection) async throws -> [(topup: Topup, createdAt: String)] {
        let rows = try await connection.query(
            """
            SELECT \(columns), created_at::text FROM topups
            WHERE customer_id = $1 AND ($2::text IS NULL OR state = $2)
              AND ($3::int8 IS NULL OR created_at >= 'epoch'::timestamptz + $3::int8 * interval '1 millisecond')
              AND ($4::int8 IS NULL OR created_at < 'epoch'::timestamptz + $4::int8 * interval '1 millisecond')
              AND ($5::timestamptz IS NULL OR (created_at, id) < ($5::timestamptz, $6::text))
            ORDER BY created_at DESC, id DESC LIMIT $7
            """,
            [customer, filter.state?.rawValue, filter.createdFromMs, filter.createdToMs, cursor?.createdAt, cursor?.id, limit])
        return try rows.map { (try topup($0), try $0.decode(13, as: String.self)) }
    }

    // MARK: the worker

    /// Claims a due, unfinished top-up for `owner` until `lease` has passed, counting an attempt.
    static func claim(id: String, owner: String, lease: Duration, on connection: PostgresConnection) async throws -> Topup? {
        let rows = try await connection.query(
            """
            UPDATE topups SET state = 'PROCESSING', attempts = attempts + 1, lease_owner = $2,
                              lease_until = clock_timestamp() + $3::int8 * interval '1 millisecond', updated_at = clock_timestamp()
            WHERE id = $1 AND state IN ('PENDING', 'PROCESSING') AND next_attempt_at <= clock_timestamp()
              AND (lease_until IS NULL OR lease_until < clock_timestamp())
            RETURNING \(columns)
            """,
            [id, owner, lease.milliseconds])
        return try rows.first.map { try topup($0) }
    }

    /// Why a top-up could not be claimed: final, leased by another worker, or not due yet.
    static func blocker(id: String, on connection: PostgresConnection) async throws -> (state: Topup.State, wait: Duration)? {
        let rows = try await connection.query(
            """
            SELECT state, greatest(0, extract(epoch FROM greatest(next_attempt_at, coalesce(lease_until, next_attempt_at)) - clock_timestamp()) * 1000)::int8
            FROM topups WHERE id = $1
            """,
            [id])
        guard let row = rows.first else { return nil }
        return (Topup.State(rawValue: try row.decode(0)) ?? .pending, .milliseconds(try row.decode(1, as: Int64.self)))
    }

    /// Records the provider calls of one claim and, if `owner` still holds the lease, the top-up's
    /// new state: final (`nextAttemptIn` nil) or PENDING again until `nextAttemptIn` has passed.
    /// Returns the updated top-up, or nil when the lease was lost (the calls are recorded anyway).
    static func settle(id: String, owner: String, state: Topup.State, failureReason: String, providerReference: String,
                       nextAttemptIn: Duration?, calls: [ProviderCall], on connection: PostgresConnection) async throws -> Topup? {
        let rows = try await connection.query(
            """
            WITH calls AS (
              INSERT INTO topup_attempts (topup_id, attempt, call, outcome, detail, latency_ms, worker, started_at)
              SELECT $1, a, c, o, d, l, $2, s FROM unnest($7::int[], $8::text[], $9::text[], $10::text[], $11::float8[], $12::timestamptz[])
                AS u(a, c, o, d, l, s)
            )
            UPDATE topups SET state = $3, failure_reason = $4, provider_reference = $5, lease_owner = NULL, lease_until = NULL,
                              next_attempt_at = clock_timestamp() + coalesce($6::int8, 0) * interval '1 millisecond',
                              updated_at = clock_timestamp()
            WHERE id = $1 AND lease_owner = $2
            RETURNING \(columns)
            """,
            [id, owner, state.rawValue, failureReason, providerReference, nextAttemptIn?.milliseconds,
             PostgresArray(calls.map(\.attempt)), PostgresArray(calls.map(\.kind)), PostgresArray(calls.map(\.outcome)),
             PostgresArray(calls.map(\.detail)), PostgresArray(calls.map(\.latencyMs)), PostgresArray(calls.map(\.startedAt))])
        return try rows.first.map { try topup($0) }
    }

    // MARK: the sweeper

    /// Unfinished top-ups nobody has touched for `age`, not leased and due: their jobs may be lost.
    static func stalled(olderThan age: Duration, limit: Int, on connection: PostgresConnection) async throws -> [String] {
        try await connection.query(
            """
            SELECT id FROM topups
            WHERE state IN ('PENDING', 'PROCESSING') AND next_attempt_at <= clock_timestamp()
              AND updated_at < clock_timestamp() - $1::int8 * interval '1 millisecond'
              AND (lease_until IS NULL OR lease_until < clock_timestamp())
            ORDER BY next_attempt_at LIMIT $2
            """,
            [age.milliseconds, limit]
        ).map { try $0.decode(0, as: String.self) }
    }

    /// Deletes up to `limit` idempotency keys older than `retention`; returns how many.
    static func pruneKeys(olderThan retention: Duration, limit: Int, on connection: PostgresConnection) async throws -> Int {
        try await connection.query(
            """
            WITH old AS (
              SELECT customer_id, idempotency_key FROM topup_idempotency_keys
              WHERE created_at < clock_timestamp() - $1::int8 * interval '1 millisecond' LIMIT $2
            )
            DELETE FROM topup_idempotency_keys k USING old
            WHERE k.customer_id = old.customer_id AND k.idempotency_key = old.idempotency_key RETURNING 1
            """,
            [retention.milliseconds, limit]
        ).count
    }
}

/// Which of a customer's top-ups a list shows.
public struct TopupFilter: Sendable, Hashable {
    public var state: Topup.State?
    public var createdFromMs: Int64?
    public var createdToMs: Int64?

    public init(state: Topup.State? = nil, createdFromMs: Int64? = nil, createdToMs: Int64? = nil) {
        self.state = state
        self.createdFromMs = createdFromMs
        self.createdToMs = createdToMs
    }
}

/// One provider call of a claim, for `topup_attempts`.
struct ProviderCall: Sendable {
    var attempt: Int
    /// "charge" or "status".
    var kind: String
    var outcome: String
    var detail: String
    var latencyMs: Double
    var startedAt: Date
}
