import Codec
import LoadKit
import Testing

/// Over the wire against an in-process server whose handlers count what they saw.
@Suite("Load runner over the wire")
struct LoadRunnerTests {
    @Test("unary Echo: every call reported is a call the server answered")
    func unary() async throws {
        try await LoadTestServer.with { server in
            let result = try await LoadRunner(configuration: server.configuration("bench.v1.Echo/Echo", stop: .requests(500))).run()
            let total = result.total
            #expect(total.calls == 500)
            #expect(total.statuses["OK"]?.count == 500)
            #expect(total.errors == 0)
            #expect(server.counts["Echo"].calls == 500)
            #expect(total.messagesSent == 500 && total.messagesReceived == 500)
            #expect(total.bytesSent == 500 * (5 + 34))  // prefix + EchoRequest{payload: 32 bytes}
            #expect(total.latency.totalCount == 500)
        }
    }

    @Test("bidi EchoStream: messages sent and received match the server's")
    func bidi() async throws {
        try await LoadTestServer.with { server in
            let configuration = try server.configuration("bench.v1.Echo/EchoStream", stop: .requests(40)) { $0.streamMessages = 25 }
            let total = try await LoadRunner(configuration: configuration).run().total
            #expect(total.calls == 40 && total.errors == 0)
            #expect(server.counts["EchoStream"] == ServerCounts.Tally(calls: 40, requests: 1000, responses: 1000))
            #expect(total.messagesSent == 1000 && total.messagesReceived == 1000)
        }
    }

    @Test("client-streaming Collect and server-streaming Expand")
    func oneSidedStreams() async throws {
        try await LoadTestServer.with { server in
            let collect = try server.configuration("bench.v1.Echo/Collect", stop: .requests(30)) { $0.streamMessages = 7 }
            let collected = try await LoadRunner(configuration: collect).run().total
            #expect(collected.calls == 30 && collected.errors == 0)
            #expect(server.counts["Collect"] == ServerCounts.Tally(calls: 30, requests: 210, responses: 30))
            #expect(collected.messagesSent == 210 && collected.messagesReceived == 30)

            let expand = try server.configuration("bench.v1.Echo/Expand", data: #"{"payload": "eA==", "repeat": 12}"#, stop: .requests(30))
            let expanded = try await LoadRunner(configuration: expand).run().total
            #expect(expanded.calls == 30 && expanded.errors == 0)
            #expect(server.counts["Expand"] == ServerCounts.Tally(calls: 30, requests: 30, responses: 360))
            #expect(expanded.messagesReceived == 360)
        }
    }

    @Test("server-streaming Health/Watch ends each stream after --stream-messages responses")
    func watch() async throws {
        try await LoadTestServer.with { server in
            let configuration = try server.configuration("grpc.health.v1.Health/Watch", stop: .requests(50)) { $0.streamMessages = 1 }
            let total = try await LoadRunner(configuration: configuration).run().total
            #expect(total.calls == 50)
            #expect(total.statuses[RPCStatistics.endedByClient]?.count == 50)
            #expect(total.errors == 0)
            #expect(server.counts["Watch"] == ServerCounts.Tally(calls: 50, requests: 50, responses: 50))
            #expect(total.messagesReceived == 50)
        }
    }

    @Test("a timed run ends open streams at its end and counts every call the server saw")
    func timedStreams() async throws {
        try await LoadTestServer.with { server in
            let configuration = try server.configuration(
                "grpc.health.v1.Health/Watch", stop: .duration(.milliseconds(300)), concurrency: 4)
            let total = try await LoadRunner(configuration: configuration).run().total
            #expect(total.calls == 4)
            #expect(total.statuses[RPCStatistics.endedByClient]?.count == 4)
            #expect(server.counts["Watch"].calls == 4)
        }
    }

    @Test("product RPCs not served yet: UNIMPLEMENTED counted with a sample message")
    func unimplemented() async throws {
        try await LoadTestServer.with { server in
            let configuration = try server.configuration("tally.v1.EventService/Track", stop: .requests(100))
            let result = try await LoadRunner(configuration: configuration).run()
            let tally = try #require(result.total.statuses["UNIMPLEMENTED"])
            #expect(tally.count == 100)
            #expect(tally.sampleMessage.contains("tally.v1.EventService"))
            #expect(result.errorRate == 1)
            #expect(result.textReport().contains("UNIMPLEMENTED"))
        }
    }

    @Test("a scenario mix is reported per RPC and in total")
    func scenario() async throws {
        try await LoadTestServer.with { server in
            let scenario = try Scenario(
                text: #"""
                    {"rpcs": [{"rpc": "bench.v1.Echo/Echo", "weight": 3},
                              {"rpc": "bench.v1.Echo/Collect", "weight": 1, "data": {"payload": "eA=="}},
                              {"rpc": "tally.v1.LeaderboardService/Top", "weight": 1}]}
                    """#, catalog: .standard, readFile: { path throws(LoadError) in throw LoadError.usage(path) })
            var configuration = try server.configuration("bench.v1.Echo/Echo", stop: .requests(400))
            configuration.workloads = scenario.workloads
            configuration.streamMessages = 2
            let result = try await LoadRunner(configuration: configuration).run()
            let echo = result.rpcs[0].statistics
            let collect = result.rpcs[1].statistics
            let top = result.rpcs[2].statistics
            #expect(echo.calls + collect.calls + top.calls == 400)
            #expect(result.total.calls == 400)
            #expect(echo.calls == server.counts["Echo"].calls)
            #expect(collect.calls == server.counts["Collect"].calls)
            #expect(server.counts["Collect"].requests == 2 * collect.calls)
            #expect(top.statuses["UNIMPLEMENTED"]?.count == top.calls)
            #expect(echo.calls > collect.calls && echo.calls > top.calls)  // 60% vs 20% of 400
            let json = result.jsonReport()
            guard case .array(let rpcs)? = json["rpcs"] else { Issue.record("no rpcs in JSON"); return }
            #expect(rpcs.count == 3)
        }
    }

    @Test("open loop with warm-up: the measured count is exact, warm-up calls are not reported")
    func openLoopWarmup() async throws {
        try await LoadTestServer.with { server in
            let configuration = try server.configuration("bench.v1.Echo/Echo", stop: .requests(300)) {
                $0.rate = 3000
                $0.warmup = .milliseconds(100)
                $0.rampUp = .milliseconds(50)
            }
            let result = try await LoadRunner(configuration: configuration).run()
            #expect(result.total.calls == 300)
            #expect(result.targetRate == 3000)
            #expect(server.counts["Echo"].calls > 300)
            // Latency counts from the scheduled send; the send delay splits off the client's
            // own lateness (never more than the latency it is part of).
            let total = result.total
            #expect(total.meanSendDelay >= 0 && total.meanSendDelay <= total.meanLatency)
            #expect(total.sendDelayMax <= total.latency.max + 1_000_000)
        }
    }

    @Test("unary calls chained on the loop: generated requests, deadlines")
    func unaryChain() async throws {
        try await LoadTestServer.with { server in
            let generated = try server.configuration(
                "bench.v1.Echo/Echo", data: #"{"payload": "{{randomBytes 16}}"}"#, stop: .requests(300))
            let echo = try await LoadRunner(configuration: generated).run().total
            #expect(echo.calls == 300 && echo.errors == 0)
            #expect(echo.bytesSent == 300 * (5 + 18))  // prefix + tag, length, 16 bytes
            #expect(echo.bytesReceived == 300 * (5 + 18))
            #expect(server.counts["Echo"].calls == 300)

            let slow = try server.configuration("grpc.health.v1.Health/Check", stop: .requests(6), concurrency: 3) {
                $0.timeout = .milliseconds(100)
            }
            let total = try await LoadRunner(configuration: slow).run().total
            #expect(total.calls == 6)
            #expect(total.statuses["DEADLINE_EXCEEDED"]?.count == 6)
        }
    }

    @Test("an open-loop mix hands streaming calls from the unary chain to the worker's task and back")
    func openLoopMix() async throws {
        try await LoadTestServer.with { server in
            let scenario = try Scenario(
                text: #"""
                    {"rpcs": [{"rpc": "bench.v1.Echo/Echo", "weight": 1},
                              {"rpc": "bench.v1.Echo/Collect", "weight": 1, "data": {"payload": "eA=="}}]}
                    """#, catalog: .standard, readFile: { path throws(LoadError) in throw LoadError.usage(path) })
            var configuration = try server.configuration("bench.v1.Echo/Echo", stop: .requests(200), concurrency: 4)
            configuration.workloads = scenario.workloads
            configuration.streamMessages = 3
            configuration.rate = 2000
            let result = try await LoadRunner(configuration: configuration).run()
            let echo = result.rpcs[0].statistics
            let collect = result.rpcs[1].statistics
            #expect(result.total.calls == 200 && result.total.errors == 0)
            #expect(echo.calls == server.counts["Echo"].calls)
            #expect(collect.calls == server.counts["Collect"].calls)
            #expect(server.counts["Collect"].requests == 3 * collect.calls)
            #expect(echo.calls > 0 && collect.calls > 0)
        }
    }

    @Test("metadata and deadlines reach the server")
    func deadline() async throws {
        try await LoadTestServer.with { server in
            let configuration = try server.configuration("grpc.health.v1.Health/Watch", stop: .requests(6), concurrency: 3) {
                $0.timeout = .milliseconds(100)
                $0.metadata.add("x-load-test", "1")
            }
            let total = try await LoadRunner(configuration: configuration).run().total
            #expect(total.statuses["DEADLINE_EXCEEDED"]?.count == 6)
            #expect(total.errors == 6)
        }
    }

    @Test("an unreachable target fails before any load with a clear message")
    func unreachable() async throws {
        // Port 1 (tcpmux): privileged and unused; a just-closed ephemeral port could be taken
        // by a server of a parallel test.
        let port = 1
        let catalog = RPCCatalog.standard
        let rpc = try catalog.rpc(named: "bench.v1.Echo/Echo")
        let configuration = LoadConfiguration(
            host: "127.0.0.1", port: port, workloads: [Workload(rpc: rpc, data: try .builtIn(for: rpc, schema: catalog.schema))],
            connectTimeout: .seconds(2))
        do {
            _ = try await LoadRunner(configuration: configuration).run()
            Issue.record("ran against a closed port")
        } catch {
            guard case .unreachable(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("127.0.0.1:\(port)"))
        }
    }
}
