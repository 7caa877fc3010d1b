import LoadKit
import Testing

/// Over the wire against the fake presence server (changes forwarded at once, no Redis).
@Suite("Presence load over the wire")
struct PresenceRunnerTests {
    func configuration(port: Int) -> PresenceLoadConfiguration {
        // Six users on three connections, each watching the five others; 100 changes in 0.5 s.
        PresenceLoadConfiguration(
            targets: [.init(host: "127.0.0.1", port: port)], streams: 6, streamsPerConnection: 2, subscriptions: 5,
            changesPerSecond: 200, heartbeat: .milliseconds(100), duration: .milliseconds(500), interval: .milliseconds(50),
            threads: 2)
    }

    @Test("every stream opens, changes are measured, the last change of every user reaches every subscriber")
    func delivered() async throws {
        try await LoadTestServer.with { server in
            let result = try await PresenceRunner(configuration: configuration(port: server.port)).run()
            #expect(result.openStreams == 6)
            #expect(result.check == PresenceCheck(checked: 30, lost: 0, unchecked: 0, sample: nil))
            #expect(result.changesSent > 0 && result.statistics.changesSent == result.changesSent)
            #expect(result.statistics.measured > 0)
            #expect(result.statistics.measured <= UInt64(5 * result.changesSent), "each change measured at most once per subscriber")
            #expect(result.statistics.heartbeatsSent > 0)
            #expect(result.statistics.outcomes["OK"]?.count == 6, "\(result.statistics.outcomes)")
            #expect(result.passed)
        }
    }

    @Test("a server that never forwards one user's changes fails the check")
    func lost() async throws {
        try await LoadTestServer.with(presence: FakePresenceHub(silenced: "user-1")) { server in
            let result = try await PresenceRunner(configuration: configuration(port: server.port)).run()
            #expect(result.openStreams == 6)
            #expect(result.check.checked == 30)
            #expect(result.check.lost == 5, "user-1's five subscribers")
            #expect(result.check.sample?.contains("of user-1,") == true, "\(result.check.sample ?? "")")
            #expect(!result.passed)
        }
    }

    @Test("a server nobody listens on: unreachable")
    func unreachable() async throws {
        var configuration = configuration(port: 1)
        configuration.connectTimeout = .seconds(1)
        configuration.rampUp = .zero
        await #expect(throws: LoadError.self) { try await PresenceRunner(configuration: configuration).run() }
    }
}
