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
    ])
    func badFlags(_ arguments: [String], _ named: String) {
        do {
            _ = try TallyLoadCommand.parseAsRoot(arguments)
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
}
