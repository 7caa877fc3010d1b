import Domain
import NIOPosix
import Testing

/// `HTTPTopupProvider` against the provider simulator over real sockets, one simulator per
/// test. Every failure path ends with the simulator's own count of charges, which is what
/// the outcomes promise: `retryable` means not charged, `ambiguous` is settled by `status(of:)`.
@Suite("HTTPTopupProvider against the provider simulator")
struct HTTPTopupProviderTests {
    /// Short, so the suite is fast; the simulator's hangs (3 s) outlast it by far.
    static let timeout = Duration.milliseconds(500)

    static func charge(_ reference: String, phone: String = "+4915112345678", amount: Int64 = 1500) -> ProviderCharge {
        ProviderCharge(reference: reference, phoneNumber: phone, amountMinorUnits: amount, currency: "EUR", carrier: "")
    }

    /// A fresh simulator and a provider pointed at it, both stopped after `body` (also when it throws).
    static func withSimulator(_ body: (ProviderSimulatorProcess, HTTPTopupProvider) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let simulator: ProviderSimulatorProcess
        do {
            simulator = try await ProviderSimulatorProcess.start()
        } catch {
            try await group.shutdownGracefully()
            throw error
        }
        let provider = HTTPTopupProvider(baseURL: simulator.url, eventLoopGroup: group)
        var failure: (any Error)?
        do { try await body(simulator, provider) } catch { failure = error }
        await provider.shutdown()
        await simulator.stop()
        try await group.shutdownGracefully()
        if let failure { throw failure }
    }

    @Test("a charge succeeds, once, with the Idempotency-Key the simulator insists on")
    func succeeds() async throws {
        try await Self.withSimulator { simulator, provider async throws in
            #expect(await provider.charge(Self.charge("t-ok"), timeout: Self.timeout) == .succeeded(providerReference: "sim-1"))
            let stats = try await simulator.stats()
            #expect(stats.charges == ["t-ok": 1])
            #expect(stats.amounts == ["EUR": 1500])
            #expect(await provider.status(of: "t-ok", timeout: Self.timeout) == .charged(providerReference: "sim-1"))
        }
    }

    @Test("a barred number (suffix 0000) is declined with the provider's reason")
    func declined() async throws {
        try await Self.withSimulator { simulator, provider async throws in
            let outcome = await provider.charge(Self.charge("t-barred", phone: "+4915110000"), timeout: Self.timeout)
            #expect(outcome == .declined(reason: "number barred"))
            #expect(try await simulator.stats().totalCharges == 0)
            #expect(await provider.status(of: "t-barred", timeout: Self.timeout) == .declined(reason: "number barred"))
        }
    }

    @Test("503 is retryable and charges nothing; the retry then charges once")
    func unavailable() async throws {
        try await Self.withSimulator { simulator, provider async throws in
            try await simulator.control(#"{"mode": "fail_503", "count": 1}"#)
            #expect(await provider.charge(Self.charge("t-busy"), timeout: Self.timeout) == .retryable(reason: "HTTP 503"))
            var stats = try await simulator.stats()
            #expect(stats.chargeRequests == 1 && stats.totalCharges == 0)
            #expect(await provider.status(of: "t-busy", timeout: Self.timeout) == .notFound)

            #expect(await provider.charge(Self.charge("t-busy"), timeout: Self.timeout) == .succeeded(providerReference: "sim-1"))
            stats = try await simulator.stats()
            #expect(stats.charges == ["t-busy": 1])
        }
    }

    @Test("503 by phone suffix (0503) is retryable too")
    func unavailableBySuffix() async throws {
        try await Self.withSimulator { simulator, provider async throws in
            let outcome = await provider.charge(Self.charge("t-503", phone: "+4915110503"), timeout: Self.timeout)
            #expect(outcome == .retryable(reason: "HTTP 503"))
            let stats = try await simulator.stats()
            #expect(stats.chargeRequests == 1 && stats.totalCharges == 0)
        }
    }

    @Test("500 after charging (suffix 0500) is ambiguous, and the status shows the charge")
    func serverErrorAfterCharging() async throws {
        try await Self.withSimulator { simulator, provider async throws in
            let outcome = await provider.charge(Self.charge("t-500", phone: "+4915110500"), timeout: Self.timeout)
            #expect(outcome == .ambiguous(reason: "HTTP 500"))
            #expect(await provider.status(of: "t-500", timeout: Self.timeout) == .charged(providerReference: "sim-1"))
            #expect(try await simulator.stats().charges == ["t-500": 1])
        }
    }

    @Test("no answer within the timeout after charging is ambiguous; the status shows one charge")
    func timeoutAfterCharge() async throws {
        try await Self.withSimulator { simulator, provider async throws in
            try await simulator.control(#"{"mode": "timeout_after_charge", "delay_ms": 3000, "count": 1}"#)
            let outcome = await provider.charge(Self.charge("t-slow"), timeout: Self.timeout)
            #expect(outcome.isAmbiguous, "\(outcome)")
            #expect(await provider.status(of: "t-slow", timeout: Self.timeout) == .charged(providerReference: "sim-1"))
            #expect(try await simulator.stats().charges == ["t-slow": 1])
        }
    }

    @Test("a reset after charging is ambiguous; the status shows one charge")
    func resetAfterCharge() async throws {
        try await Self.withSimulator { simulator, provider async throws in
            try await simulator.control(#"{"mode": "reset_after_charge", "count": 1}"#)
            let outcome = await provider.charge(Self.charge("t-reset"), timeout: Self.timeout)
            #expect(outcome.isAmbiguous, "\(outcome)")
            #expect(await provider.status(of: "t-reset", timeout: Self.timeout) == .charged(providerReference: "sim-1"))
            #expect(try await simulator.stats().charges == ["t-reset": 1])
        }
    }

    @Test("a reset before charging is ambiguous (the request was sent); the status shows no charge")
    func resetBeforeCharge() async throws {
        try await Self.withSimulator { simulator, provider async throws in
            try await simulator.control(#"{"mode": "reset_before_charge", "count": 1}"#)
            let outcome = await provider.charge(Self.charge("t-dropped"), timeout: Self.timeout)
            #expect(outcome.isAmbiguous, "\(outcome)")
            let stats = try await simulator.stats()
            #expect(stats.chargeRequests == 1 && stats.totalCharges == 0)
            #expect(await provider.status(of: "t-dropped", timeout: Self.timeout) == .notFound)
        }
    }

    @Test("the status of a reference never charged is notFound")
    func statusOfUnknownReference() async throws {
        try await Self.withSimulator { simulator, provider async throws in
            #expect(await provider.status(of: "t-never/seen", timeout: Self.timeout) == .notFound)
            #expect(try await simulator.stats().statusQueries == 1)
        }
    }

    @Test("with nobody listening, a charge is retryable (never sent) and a status unknown")
    func providerDown() async throws {
        // A port that was just listening and no longer is.
        let gone = try await ProviderSimulatorProcess.start()
        await gone.stop()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let provider = HTTPTopupProvider(baseURL: gone.url, eventLoopGroup: group)
        let outcome = await provider.charge(Self.charge("t-down"), timeout: Self.timeout)
        let status = await provider.status(of: "t-down", timeout: Self.timeout)
        await provider.shutdown()
        try await group.shutdownGracefully()
        #expect(outcome.isRetryable, "\(outcome)")
        #expect(status.isUnknown, "\(status)")
    }
}

extension ProviderOutcome {
    var isAmbiguous: Bool {
        if case .ambiguous = self { true } else { false }
    }

    var isRetryable: Bool {
        if case .retryable = self { true } else { false }
    }
}

extension ProviderStatus {
    var isUnknown: Bool {
        if case .unknown = self { true } else { false }
    }
}
