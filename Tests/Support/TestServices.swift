package import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The real PostgreSQL and Redis the storage tests run against (tools/services.sh).
///
/// `shared` is the set tools/test.sh starts (its URLs come from the environment, or from
/// `.tally/services.env` after starting it when run by hand). Tests that stop, kill or restart
/// a service make a `PrivateSet` so tests running beside them are unharmed.
package enum TestServices {
    package static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // file, Support, Tests
        return url
    }()

    /// URLs of the shared set, started on first use if the environment names none.
    package static let shared: Endpoints = {
        let env = ProcessInfo.processInfo.environment
        if let database = env["DATABASE_URL"], let redis = env["REDIS_URL"] {
            return Endpoints(databaseURL: database, redisURL: redis)
        }
        let state = repositoryRoot.appendingPathComponent(".tally")
        do {
            try runServicesScriptBlocking(["start"], stateDirectory: state)
            return try Endpoints(environmentFile: state.appendingPathComponent("services.env"))
        } catch {
            fatalError("could not start the shared test services: \(error)")
        }
    }()

    /// The `redis+cluster://` URL of the run's Redis Cluster (3 masters, 3 replicas), from
    /// REDIS_CLUSTER_URL, or started with `services.sh cluster start` beside the shared set.
    package static let clusterURL: String = {
        let env = ProcessInfo.processInfo.environment
        if let url = env["REDIS_CLUSTER_URL"] { return url }
        let state = env["TALLY_STATE_DIR"].map { URL(fileURLWithPath: $0) } ?? repositoryRoot.appendingPathComponent(".tally")
        do {
            try runServicesScriptBlocking(["cluster", "start"], stateDirectory: state)
            let file = try String(contentsOf: state.appendingPathComponent("services.env"), encoding: .utf8)
            for line in file.split(separator: "\n") where line.hasPrefix("REDIS_CLUSTER_URL=") {
                return String(line.dropFirst("REDIS_CLUSTER_URL=".count))
            }
            fatalError("services.sh cluster start wrote no REDIS_CLUSTER_URL")
        } catch {
            fatalError("could not start the test Redis Cluster: \(error)")
        }
    }()

    package struct Endpoints: Sendable {
        package var databaseURL: String
        package var redisURL: String

        package init(databaseURL: String, redisURL: String) {
            self.databaseURL = databaseURL
            self.redisURL = redisURL
        }

        package init(environmentFile: URL) throws {
            var values: [String: String] = [:]
            for line in try String(contentsOf: environmentFile, encoding: .utf8).split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                values[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            self.databaseURL = values["DATABASE_URL"] ?? ""
            self.redisURL = values["REDIS_URL"] ?? ""
        }
    }

    package enum Service: String, Sendable {
        case postgres, redis
    }

    /// A throwaway PostgreSQL + Redis of one test, in a temporary state folder.
    package final class PrivateSet: Sendable {
        package let stateDirectory: URL
        package let endpoints: Endpoints

        /// Starts the named services (both by default) in a new folder.
        package init(_ services: [Service] = [.postgres, .redis]) async throws {
            let parent = URL(fileURLWithPath: NSTemporaryDirectory())
                .appendingPathComponent("tally-test-\(UUID().uuidString.prefix(8))")
            stateDirectory = parent
            for service in services {
                try await runServicesScript(["start", service.rawValue], stateDirectory: parent)
            }
            endpoints = try Endpoints(environmentFile: parent.appendingPathComponent("services.env"))
        }

        package func stop(_ service: Service) async throws {
            try await runServicesScript(["stop", service.rawValue], stateDirectory: stateDirectory)
        }

        package func start(_ service: Service) async throws {
            try await runServicesScript(["start", service.rawValue], stateDirectory: stateDirectory)
        }

        package func restart(_ service: Service) async throws {
            try await runServicesScript(["restart", service.rawValue], stateDirectory: stateDirectory)
        }

        /// Stops everything and removes the folder; call it at the end of the test (from
        /// `defer`, so it blocks briefly rather than leaving servers behind at process exit).
        package func destroy() {
            try? TestServices.runServicesScriptBlocking(["stop"], stateDirectory: stateDirectory)
            try? FileManager.default.removeItem(at: stateDirectory)
        }
    }

    package struct ScriptFailed: Error, CustomStringConvertible {
        package var arguments: [String]
        package var status: Int32
        package var output: String
        package var description: String { "services.sh \(arguments.joined(separator: " ")) exited \(status): \(output)" }
    }

    /// Runs tools/services.sh synchronously (tests only; it takes a second or two).
    ///
    /// posix_spawn + waitpid rather than Foundation's Process: Process learns of the exit
    /// through a descriptor the child inherits, and a daemon the script leaves behind kept it
    /// open, so waitUntilExit never returned (services.sh now also detaches its daemons).
    package static func runServicesScript(_ arguments: [String], stateDirectory: URL) async throws {
        try await offCooperativePool { try runServicesScriptBlocking(arguments, stateDirectory: stateDirectory) }
    }

    /// Runs blocking work (waiting for a process) on a thread of its own: blocking one of
    /// the cooperative pool's few threads for seconds stalls every other test's tasks and
    /// turns timing margins of seconds into failures.
    package static func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    package static func runServicesScriptBlocking(_ arguments: [String], stateDirectory: URL) throws {
        var environment = ProcessInfo.processInfo.environment
        environment["TALLY_STATE_DIR"] = stateDirectory.path
        let outputFile = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("tally-services-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(at: outputFile) }
        let argv = ["/bin/bash", repositoryRoot.appendingPathComponent("tools/services.sh").path] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputFile.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnvp = envp.map { strdup($0) } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnvp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/bash", &actions, nil, cArgv, cEnvp)
        guard spawned == 0 else {
            throw ScriptFailed(arguments: arguments, status: spawned, output: "posix_spawn failed")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        guard code == 0 else {
            let output = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
            throw ScriptFailed(arguments: arguments, status: code, output: output)
        }
    }
}
