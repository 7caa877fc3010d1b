import Foundation
import Logging
import NIOPosix
import Storage
import TestSupport
import Testing

@testable import Domain

/// What one claim decides, for scripted provider answers (no database touched by `decide`):
/// a charge is never repeated without asking the status first, and an unknown status never
/// fails a top-up that may have been charged.
@Suite("Top-up processor decisions")
struct TopupProcessorTests {
    /// Answers charges and status queries from scripts, recording every call.
    final class ScriptedProvider: TopupProvider, @unchecked Sendable {
        let name = "scripted"
        var charges: [ProviderOutcome]
        var statuses: [ProviderStatus]
        var calls: [String] = []

        init(charges: [ProviderOutcome] = [], statuses: [ProviderStatus] = []) {
            self.charges = charges
            self.statuses = statuses
        }

        func charge(_ charge: ProviderCharge, timeout: Duration) async -> ProviderOutcome {
            calls.append("charge")
            return charges.removeFirst()
        }

        func status(of reference: String, timeout: Duration) async -> ProviderStatus {
            calls.append("status")
            return statuses.removeFirst()
        }

        func shutdown() async {}
    }

    static func decide(attempt: Int, _ provider: ScriptedProvider, maxAttempts: Int = 3) async throws -> TopupProcessor.Decision {
        try await TestRedis.withClient { redis in
            var configuration = TopupsConfiguration.defaults
            configuration.maxAttempts = maxAttempts
            let database = PostgresDatabase(primary: try TestDatabase.serverConfiguration(url: TestServices.shared.databaseURL))
            let topups = Topups(database: database, queue: JobQueue(name: "unused", redis: redis),
                                changes: TopupChanges(redis: redis, subscriber: RedisSubscriber(configuration: redis.configuration, group: MultiThreadedEventLoopGroup.singleton)),
                                configuration: configuration, logger: Logger(label: "test"))
            let processor = TopupProcessor(topups: topups, provider: provider, instanceID: "test", logger: Logger(label: "test"))
            let topup = Topup(id: "tp_1", customerID: "c", idempotencyKey: "k", phoneNumber: "+4915112345678", amountMinorUnits: 1500,
                              currency: "EUR", carrier: "", state: .processing, failureReason: "", providerReference: "", attempts: attempt,
                              createdAtMs: 0, updatedAtMs: 0)
            let decision = await processor.decide(topup)
            await database.shutdown()
            return decision
        }
    }

    @Test("a first attempt charges without asking")
    func firstAttempt() async throws {
        let provider = ScriptedProvider(charges: [.succeeded(providerReference: "p-1")])
        let decision = try await Self.decide(attempt: 1, provider)
        #expect(provider.calls == ["charge"])
        #expect(decision.state == .succeeded && decision.providerReference == "p-1" && decision.calls.count == 1)
    }

    @Test("a later attempt asks first, and a charge found ends it without charging")
    func laterAttemptFindsCharge() async throws {
        let provider = ScriptedProvider(statuses: [.charged(providerReference: "p-7")])
        let decision = try await Self.decide(attempt: 2, provider)
        #expect(provider.calls == ["status"])
        #expect(decision.state == .succeeded && decision.providerReference == "p-7")
    }

    @Test("an ambiguous charge is settled by the status, not by a second charge")
    func ambiguous() async throws {
        let provider = ScriptedProvider(charges: [.ambiguous(reason: "timeout")], statuses: [.notFound])
        let decision = try await Self.decide(attempt: 1, provider)
        #expect(provider.calls == ["charge", "status"])
        #expect(decision.state == .pending && decision.retryIn != nil)
    }

    @Test("an unknown status never fails the top-up at the attempt limit; it waits to ask again")
    func unknownStatusWaits() async throws {
        let provider = ScriptedProvider(statuses: [.unknown(reason: "provider down")])
        let decision = try await Self.decide(attempt: 3, provider, maxAttempts: 3)
        #expect(provider.calls == ["status"])
        #expect(decision.state == .pending && decision.retryIn != nil)
        let late = ScriptedProvider(statuses: [.unknown(reason: "provider down")])
        let gaveUp = try await Self.decide(attempt: 9, late, maxAttempts: 3)
        #expect(gaveUp.state == .failed && gaveUp.failureReason.contains("unknown"))
    }

    @Test("retryable refusals fail the top-up at the attempt limit, declines at once")
    func limits() async throws {
        let refused = try await Self.decide(attempt: 3, ScriptedProvider(charges: [.retryable(reason: "503")], statuses: [.notFound]), maxAttempts: 3)
        #expect(refused.state == .failed && refused.failureReason.contains("after 3 attempts"))
        let declined = try await Self.decide(attempt: 1, ScriptedProvider(charges: [.declined(reason: "barred")]))
        #expect(declined.state == .failed && declined.failureReason.contains("barred") && declined.retryIn == nil)
    }
}
