import ArgumentParser
import Codec
import LoadKit
import Testing

@testable import TallyLoad

@Suite("Command line")
struct CommandLineTests {
    @Test("bad flags are usage errors naming the flag", arguments: [
        (["bench.v1.Echo/Echo", "-n", "0"], "--requests (-n)"),
        (["bench.v1.Echo/Echo", "-n", "5", "-z", "1s"], "--requests (-n) and --duration (-z)"),
        (["bench.v1.Echo/Echo", "-z", "soon"], "--duration (-z)"),
        (["bench.v1.Echo/Echo", "--connections", "0"], "--connections"),
        (["bench.v1.Echo/Echo", "-c", "10", "--connections", "4", "--streams", "2"], "--streams"),
        (["bench.v1.Echo/Echo", "--rps", "-3"], "--rps"),
        (["bench.v1.Echo/Echo", "--target", "localhost"], "--target"),
        (["bench.v1.Echo/Echo", "-H", "novalue"], "-H"),
        (["bench.v1.Echo/Echo", "--format", "xml"], "--format"),
        (["bench.v1.Echo/Echo", "--max-error-rate", "2"], "--max-error-rate"),
        (["bench.v1.Echo/Echo", "--stream-interval", "fast"], "--stream-interval"),
        (["tally.v1.TopupService/Topup", "--retry-share", "1"], "--retry-share"),
        (["tally.v1.TopupService/Topup", "--retry-share", "-0.1"], "--retry-share"),
        ([], "give an RPC"),
        (["presence", "--subscriptions", "501"], "--subscriptions"),
        (["presence", "--streams", "0"], "--streams"),
        (["presence", "--target", "127.0.0.1:1,nohost"], "--target"),
        (["presence", "--first-user", "10", "--streams", "5", "--users", "12"], "--users"),
        (["presence", "--interval", "0s"], "--interval"),
    ])
    func badFlags(_ arguments: [String], _ named: String) {
        do {
            _ = try TallyLoadMain.parse(arguments)
            Issue.record("accepted \(arguments)")
        } catch {
            #expect(TallyLoadCommand.exitCode(for: error).rawValue == 64)
            #expect(TallyLoadCommand.message(for: error).contains(named), "\(TallyLoadCommand.message(for: error))")
        }
    }

    @Test("good flags parse into the run they describe")
    func goodFlags() throws {
        let parsed = try TallyLoadCommand.parseAsRoot([
            "tally.v1.EventService/Track", "-z", "2s", "--connections", "4", "--streams", "8", "--rps", "1000",
            "--warmup", "500ms", "-H", "authorization: Bearer x", "--format", "json", "--target", "10.0.0.7:6000",
        ])
        let command = try #require(parsed as? TallyLoadCommand)
        #expect(command.format == "json")
        let configuration = try command.makeConfiguration(catalog: .standard)
        #expect(configuration.host == "10.0.0.7")
        #expect(configuration.port == 6000)
        #expect(configuration.workloads.map(\.rpc.name) == ["tally.v1.EventService/Track"])
        #expect(configuration.stop == .duration(.seconds(2)))
        #expect(configuration.connections == 4)
        #expect(configuration.concurrency == 32, "connections x streams")
        #expect(configuration.rate == 1000)
        #expect(configuration.warmup == .milliseconds(500))
        #expect(configuration.rampUp == .zero)
        #expect(configuration.metadata == Metadata(["authorization": "Bearer x"]))
        #expect(configuration.timeout == nil)
        #expect(configuration.tls == nil)
    }

    @Test("top-ups with an API key and a retry share")
    func topupFlags() throws {
        let parsed = try TallyLoadCommand.parseAsRoot([
            "tally.v1.TopupService/Topup", "-H", "x-api-key:tly_live_abc", "--retry-share", "0.1", "-n", "500",
        ])
        let configuration = try #require(parsed as? TallyLoadCommand).makeConfiguration(catalog: .standard)
        #expect(configuration.metadata == Metadata(["x-api-key": "tly_live_abc"]))
        #expect(configuration.retryShare == 0.1)
        #expect(configuration.countedField == "replayed")
        let quiet = try #require(try TallyLoadCommand.parseAsRoot(["bench.v1.Echo/Echo", "--count-field", ""]) as? TallyLoadCommand)
        let echo = try quiet.makeConfiguration(catalog: .standard)
        #expect(echo.retryShare == 0 && echo.countedField == nil)
    }

    @Test("presence: its own command, shown in tally-load --help; targets repeated or comma-separated")
    func presenceFlags() throws {
        #expect(TallyLoadCommand.helpMessage().contains("presence"))
        let parsed = try TallyLoadMain.parse([
            "presence", "--streams", "20", "--streams-per-connection", "3", "--first-user", "40", "--users", "100",
            "--subscriptions", "7", "--changes-per-sec", "250", "-z", "3s", "--ramp-up", "1s", "--interval", "500ms",
            "--target", "127.0.0.1:1, 127.0.0.1:2", "--target", "127.0.0.1:3",
        ])
        let command = try #require(parsed as? TallyLoadPresenceCommand)
        let configuration = try command.makeConfiguration()
        #expect(configuration.targets.map(\.port) == [1, 2, 3])
        #expect(configuration.streams == 20 && configuration.streamsPerConnection == 3 && configuration.connections == 7)
        #expect(configuration.firstUser == 40 && configuration.users == 100 && configuration.subscriptions == 7)
        #expect(configuration.changesPerSecond == 250)
        #expect(configuration.duration == .seconds(3) && configuration.rampUp == .seconds(1))
        #expect(configuration.interval == .milliseconds(500) && configuration.bar == .milliseconds(600))
        let defaults = try #require(try TallyLoadMain.parse(["presence"]) as? TallyLoadPresenceCommand).makeConfiguration()
        #expect(defaults.targets == [.init(host: "127.0.0.1", port: 50051)])
        #expect(defaults.users == 100 && defaults.heartbeat == .seconds(10))
    }
}
