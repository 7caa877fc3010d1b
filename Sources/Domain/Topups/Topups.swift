import Codec
import Foundation
public import Logging
public import Storage

/// The top-up domain's entry points: accept (idempotently), read, list and watch.
///
/// Postgres is the truth: a top-up and its idempotency key commit in one statement before the
/// partner gets an answer; then it is queued in Redis. A top-up accepted but not queued (Redis
/// unreachable, a crash after the commit) is queued by `TopupSweeper`.
public final class Topups: Sendable {
    public static let queueName = "topups"

    let database: PostgresDatabase
    let queue: JobQueue
    let changes: TopupChanges
    let creations: TopupCreations
    public let configuration: TopupsConfiguration
    let logger: Logger

    public init(database: PostgresDatabase, queue: JobQueue, changes: TopupChanges, configuration: TopupsConfiguration, logger: Logger) {
        self.database = database
        self.queue = queue
        self.changes = changes
        self.creations = TopupCreations(database: database, queue: queue, logger: logger)
        self.configuration = configuration
        self.logger = logger
    }

    /// Creates the top-up, or returns the one this customer's idempotency key already names
    /// (`replayed`), whatever its state. The same key with other parameters is
    /// FAILED_PRECONDITION naming the fields that differ; a retry racing the first request
    /// waits for its commit. Creations are group-committed (`TopupCreations`); a call waits
    /// for its batch's commit whatever its deadline says, as the commit is what it asked for.
    public func create(_ order: TopupOrder, customer: String) async throws -> (topup: Topup, replayed: Bool) {
        try configuration.rules.validate(order)
        let topup: Topup, replayed: Bool
        do {
            (topup, replayed) = try await creations.create(TopupCreations.Request(id: Self.newID(), customer: customer, order: order))
        } catch is TopupStore.KeyVanished {
            throw RPCError(.aborted, "idempotency_key: the request that used this key did not finish; retry")
        }
        let differences = replayed ? order.differences(from: topup) : []
        guard differences.isEmpty else {
            throw RPCError(.failedPrecondition,
                           "idempotency_key: already used with other parameters (differs in \(differences.joined(separator: ", "))); use a new key for a new top-up")
        }
        return (topup, replayed)
    }

    /// The customer's top-up: NOT_FOUND for an unknown id, PERMISSION_DENIED for another's.
    /// Read from the primary: a client asks for the id `Topup` just returned, which a lagging
    /// replica may not have yet.
    public func get(id: String, customer: String, deadline: ContinuousClock.Instant?) async throws -> Topup {
        guard !id.isEmpty, id.utf8.count <= 64 else { throw RPCError(.invalidArgument, "id: 1..64 bytes") }
        guard let topup = try await database.withConnection(deadline: deadline, { try await TopupStore.find(id: id, on: $0) }) else {
            throw RPCError(.notFound, "no top-up \(id)")
        }
        guard topup.customerID == customer else {
            throw RPCError(.permissionDenied, "top-up \(id) belongs to another customer")
        }
        return topup
    }

    /// A page of the customer's top-ups, newest first; `cursor` continues a previous page.
    /// From the read replica when configured: a top-up created within the replica's lag
    /// bound (`DATABASE_READ_MAX_LAG_MS`) may be missing, or show an earlier state.
    public func list(customer: String, filter: TopupFilter, limit: Int, cursor: String, deadline: ContinuousClock.Instant?)
        async throws -> (topups: [Topup], nextCursor: String) {
        guard (1...500).contains(limit) else { throw RPCError(.invalidArgument, "limit: between 1 and 500, got \(limit)") }
        if let from = filter.createdFromMs, let to = filter.createdToMs, from >= to {
            throw RPCError(.invalidArgument, "created_from_ms must be before created_to_ms")
        }
        let after = try cursor.isEmpty ? nil : TopupCursor.decode(cursor)
        let rows = try await database.read(deadline: deadline) { connection in
            try await TopupStore.list(customer: customer, filter: filter, after: after, limit: limit + 1, on: connection)
        }
        let page = rows.prefix(limit)
        let next = rows.count > limit ? page.last.map { TopupCursor.encode(createdAt: $0.createdAt, id: $0.topup.id) } ?? "" : ""
        return (page.map(\.topup), next)
    }

    /// Sends the top-up now and after each change, until it is final. Reads the primary: a
    /// change announced is read at once, and a replica behind it would send the old state.
    public func watch(id: String, customer: String, send: @escaping @Sendable (Topup) async throws -> Void) async throws {
        let first = try await get(id: id, customer: customer, deadline: nil)
        try await changes.follow(id: id, first: first) {
            try await self.database.withConnection { try await TopupStore.find(id: id, on: $0) }
        } send: { topup in
            try await send(topup)
        }
    }

    /// `tp_` and 32 hex digits of randomness.
    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high: UInt64 = generator.next(), low: UInt64 = generator.next()
        return "tp_" + String(format: "%016llx%016llx", high, low)
    }
}

/// ListTopups' cursor: the last row's creation time (Postgres' text, exact to the microsecond)
/// and id, base64url so clients treat it as opaque.
enum TopupCursor {
    static func encode(createdAt: String, id: String) -> String {
        Data("\(createdAt)|\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ cursor: String) throws(RPCError) -> (createdAt: String, id: String) {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard cursor.utf8.count <= 200, let data = Data(base64Encoded: base64),
              let text = String(data: data, encoding: .utf8), let bar = text.lastIndex(of: "|"),
              text[..<bar].utf8.count >= 19, text[..<bar].allSatisfy({ "0123456789-:. +".contains($0) }) else {
            throw RPCError(.invalidArgument, "cursor: not a cursor from ListTopups")
        }
        return (String(text[..<bar]), String(text[text.index(after: bar)...]))
    }
}
