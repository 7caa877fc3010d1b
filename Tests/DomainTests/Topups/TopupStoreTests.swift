import Foundation
import Storage
import TestSupport
import Testing

@testable import Domain

/// The top-up tables' statements on a real PostgreSQL: group-committed creation with replays,
/// and the worker's lease, which keeps two workers from calling the provider for one top-up
/// and keeps a worker that lost its lease from settling it.
@Suite("Top-up store")
struct TopupStoreTests {
    static func withDatabase<T>(_ body: (PostgresDatabase) async throws -> T) async throws -> T {
        try await MigratedDatabase.with(maxConnections: 4, body)
    }

    static func request(_ key: String, customer: String = "acme", minor: Int64 = 1500) -> TopupCreations.Request {
        TopupCreations.Request(id: Topups.newID(), customer: customer,
                               order: TopupOrder(idempotencyKey: key, phoneNumber: "+4915112345678", amountMinorUnits: minor, currency: "EUR", carrier: ""))
    }

    @Test("one batch creates new keys, replays known ones and a key repeated within it, per customer")
    func batch() async throws {
        try await Self.withDatabase { database in
            let first = try await database.withConnection { try await TopupStore.create([Self.request("a")], on: $0) }
            let original = try #require(first[0])
            #expect(!original.replayed)
            let batch = [Self.request("a"), Self.request("b"), Self.request("b"), Self.request("a", customer: "other")]
            let results = try await database.withConnection { try await TopupStore.create(batch, on: $0) }.map { try #require($0) }
            #expect(results[0].replayed && results[0].topup.id == original.topup.id)
            #expect(!results[1].replayed && results[1].topup.id == batch[1].id)
            #expect(results[2].replayed && results[2].topup.id == batch[1].id)
            #expect(!results[3].replayed && results[3].topup.customerID == "other")
            let count = try await database.withConnection { try await $0.query("SELECT count(*) FROM topups").scalar(Int.self) }
            #expect(count == 3)
        }
    }

    @Test("concurrent creations through the group committer make one top-up per key")
    func groupCommit() async throws {
        try await Self.withDatabase { database in
            let creations = TopupCreations(database: database, queue: nil, maxInFlight: 2, maxBatch: 7)
            let results = try await withThrowingTaskGroup(of: (String, Topup, Bool).self) { group in
                for n in 0..<60 {
                    group.addTask {
                        let request = Self.request("key-\(n % 20)")
                        let (topup, replayed) = try await creations.create(request)
                        return (request.order.idempotencyKey, topup, replayed)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let byKey = Dictionary(grouping: results, by: \.0)
            #expect(byKey.count == 20)
            for (_, answers) in byKey {
                #expect(Set(answers.map(\.1.id)).count == 1)
                #expect(answers.filter { !$0.2 }.count == 1)
            }
        }
    }

    @Test("a leased top-up cannot be claimed again, and a worker that lost its lease cannot settle it")
    func lease() async throws {
        try await Self.withDatabase { database in
            try await database.withConnection { connection in
                let created = try #require(try await TopupStore.create([Self.request("k")], on: connection)[0]).topup
                let first = try #require(try await TopupStore.claim(id: created.id, owner: "A", lease: .seconds(60), on: connection))
                #expect(first.state == .processing && first.attempts == 1)
                #expect(try await TopupStore.claim(id: created.id, owner: "B", lease: .seconds(60), on: connection) == nil)

                // A's lease runs out (a paused or dead worker): B claims, then A's late answer comes.
                _ = try await connection.query("UPDATE topups SET lease_until = clock_timestamp() - interval '1 second' WHERE id = $1", [created.id])
                let second = try #require(try await TopupStore.claim(id: created.id, owner: "B", lease: .seconds(60), on: connection))
                #expect(second.attempts == 2)
                let call = ProviderCall(attempt: 1, kind: "charge", outcome: "succeeded", detail: "late", latencyMs: 1, startedAt: Date())
                let late = try await TopupStore.settle(id: created.id, owner: "A", state: .succeeded, failureReason: "", providerReference: "late",
                                                       nextAttemptIn: nil, calls: [call], on: connection)
                #expect(late == nil)
                let now = try #require(try await TopupStore.find(id: created.id, on: connection))
                #expect(now.state == .processing && now.providerReference == "")
                // A's call is in the audit all the same.
                #expect(try await connection.query("SELECT count(*) FROM topup_attempts WHERE topup_id = $1", [created.id]).scalar(Int.self) == 1)

                let settled = try await TopupStore.settle(id: created.id, owner: "B", state: .succeeded, failureReason: "", providerReference: "ok",
                                                          nextAttemptIn: nil, calls: [], on: connection)
                #expect(settled?.state == .succeeded)
                #expect(try await TopupStore.claim(id: created.id, owner: "C", lease: .seconds(60), on: connection) == nil)
            }
        }
    }

    @Test("idempotency keys past their retention are pruned, younger ones kept, top-ups kept")
    func prune() async throws {
        try await Self.withDatabase { database in
            try await database.withConnection { connection in
                _ = try await TopupStore.create([Self.request("old"), Self.request("new")], on: connection)
                _ = try await connection.query(
                    "UPDATE topup_idempotency_keys SET created_at = clock_timestamp() - interval '73 hours' WHERE idempotency_key = 'old'")
                #expect(try await TopupStore.pruneKeys(olderThan: .seconds(72 * 3600), limit: 100, on: connection) == 1)
                let keys = try await connection.query("SELECT idempotency_key FROM topup_idempotency_keys").map { try $0.decode(0, as: String.self) }
                #expect(keys == ["new"])
                #expect(try await connection.query("SELECT count(*) FROM topups").scalar(Int.self) == 2)
            }
        }
    }
}
