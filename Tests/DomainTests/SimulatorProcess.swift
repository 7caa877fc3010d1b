import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A Python simulator of `tools/` (provider_sim.py, webhook_sim.py) in a process of its own:
/// one per test, so tests running in parallel never share its control mode or its counts.
///
/// The interpreter is `$TALLY_PYTHON` (tools/test.sh points it at the venv), else `python3`.
/// The script takes `--port 0 --port-file PATH` and writes its bound port there.
final class SimulatorProcess {
    let url: String
    let port: Int
    private let process: Process
    private let exited: AsyncStream<Void>
    private let log: URL

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `script` (relative to the repository) on a free loopback port and returns once
    /// it listens.
    static func start(script relativePath: String, arguments: [String] = []) async throws -> SimulatorProcess {
        let script = TestServices.repositoryRoot.appendingPathComponent(relativePath)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tally-sim-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let portFile = scratch.appendingPathComponent("port")
        let log = scratch.appendingPathComponent("stderr.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let python = ProcessInfo.processInfo.environment["TALLY_PYTHON"] ?? "python3"
        process.arguments = [python, script.path, "--port", "0", "--port-file", portFile.path] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: log)
        let (exited, exit) = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in exit.finish() }
        try process.run()

        // Python's start-up takes a second or more on a loaded machine.
        for _ in 0..<1000 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8),
               let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return SimulatorProcess(process: process, exited: exited, port: port, log: log)
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill(process.processIdentifier, SIGKILL)
        for await _ in exited {}
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw Failure(description: "\(relativePath) did not start (\(python)): \(output)")
    }

    private init(process: Process, exited: AsyncStream<Void>, port: Int, log: URL) {
        self.process = process
        self.exited = exited
        self.port = port
        self.url = "http://127.0.0.1:\(port)"
        self.log = log
    }

    /// Sets a test mode, e.g. `{"mode": "reset_after_charge", "count": 1}`.
    func control(_ json: String) async throws {
        var request = HTTPClientRequest(url: "\(url)/control")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: json))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 16)
        guard response.status.code == 200 else { throw Failure(description: "control \(json): HTTP \(response.status.code)") }
    }

    /// `GET /stats`, decoded.
    func stats<Stats: Decodable>(_ type: Stats.Type = Stats.self) async throws -> Stats {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(url)/stats"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 26)
        return try JSONDecoder().decode(Stats.self, from: Data(body.readableBytesView))
    }

    /// Kills the process and waits for it; its port is free afterwards.
    func stop() async {
        // SIGKILL, not `terminate()`: Foundation starts children with the spawning thread's
        // signal mask, which blocks SIGTERM; the simulator unblocks it, but SIGKILL needs no help.
        kill(process.processIdentifier, SIGKILL)
        for await _ in exited {}
        try? FileManager.default.removeItem(at: log.deletingLastPathComponent())
    }
}
