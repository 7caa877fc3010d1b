import Foundation
import NIOPosix
import Testing

@testable import Domain

/// `WebhookSink` against `tools/quiz/webhook_sim.py`: what it sends (signed, with the id
/// header) and how it reads the answers over a real socket.
@Suite("Webhook sink")
struct WebhookSinkTests {
    static func withSink(timeout: Duration = .seconds(2), _ body: (WebhookSimulatorProcess, WebhookSink) async throws -> Void) async throws {
        let simulator = try await WebhookSimulatorProcess.start(secret: "s3cret")
        let sink = WebhookSink(url: simulator.url, secret: simulator.secret, timeout: timeout, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        do {
            try await body(simulator, sink)
        } catch {
            await sink.shutdown()
            await simulator.stop()
            throw error
        }
        await sink.shutdown()
        await simulator.stop()
    }

    static let message = NotificationMessage(id: "reward:q:d:u1", destination: "u1", kind: "quiz.reward", body: #"{"points": 3}"#)

    @Test("a delivered message arrives signed, with its id")
    func delivered() async throws {
        try await Self.withSink { simulator, sink in
            #expect(await sink.deliver(Self.message, attempt: 2) == .delivered)
            let stats = try await simulator.stats()
            #expect(stats.total == 1 && stats.invalidSignatures == 0)
            #expect(stats.arrivals.first?.id == Self.message.id && stats.arrivals.first?.attempt == 2)
        }
    }

    @Test("a wrong secret fails the simulator's check (the check can fail)")
    func wrongSecret() async throws {
        try await Self.withSink { simulator, _ async throws in
            let forged = WebhookSink(url: simulator.url, secret: "other", timeout: .seconds(2), eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
            _ = await forged.deliver(Self.message, attempt: 1)
            await forged.shutdown()
            #expect(try await simulator.stats().invalidSignatures == 1)
        }
    }

    @Test("429 with a body or a header, 5xx, 4xx and a timeout, over the wire")
    func answers() async throws {
        try await Self.withSink(timeout: .milliseconds(300)) { simulator, sink in
            try await simulator.control(#"{"mode": "throttle", "count": 1, "retry_after": 2}"#)
            #expect(await sink.deliver(Self.message, attempt: 1) == .throttled(retryAfter: .seconds(2)))
            try await simulator.control(#"{"mode": "throttle", "count": 1, "retry_after": 3, "retry_after_in": "header"}"#)
            #expect(await sink.deliver(Self.message, attempt: 1) == .throttled(retryAfter: .seconds(3)))
            try await simulator.control(#"{"mode": "fail", "count": 1, "status": 503}"#)
            #expect(await sink.deliver(Self.message, attempt: 1) == .retryable(reason: "HTTP 503"))
            try await simulator.control(#"{"mode": "reject", "count": 1, "status": 422}"#)
            #expect(await sink.deliver(Self.message, attempt: 1) == .rejected(reason: "HTTP 422"))
            try await simulator.control(#"{"mode": "slow", "count": 1, "delay_ms": 2000}"#)
            guard case .retryable = await sink.deliver(Self.message, attempt: 1) else {
                Issue.record("a send past its timeout is retryable")
                return
            }
            #expect(await sink.deliver(Self.message, attempt: 1) == .delivered)
        }
    }

    @Test("no listener is retryable")
    func refused() async throws {
        let simulator = try await WebhookSimulatorProcess.start(secret: "s")
        let url = simulator.url
        await simulator.stop()
        let sink = WebhookSink(url: url, secret: "s", timeout: .seconds(2), eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        guard case .retryable = await sink.deliver(Self.message, attempt: 1) else {
            Issue.record("a refused connection is retryable")
            await sink.shutdown()
            return
        }
        await sink.shutdown()
    }
}
