import ArgumentParser
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

    @Test("good flags parse")
    func goodFlags() throws {
        _ = try TallyLoadCommand.parseAsRoot([
            "tally.v1.EventService/Track", "-z", "2s", "--connections", "4", "--streams", "8", "--rps", "1000",
            "--warmup", "500ms", "-H", "authorization: Bearer x", "--format", "json",
        ])
    }
}
