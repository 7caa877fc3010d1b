import Foundation

/// The real PostgreSQL and Redis the storage tests run against (tools/services.sh).
///
/// `shared` is the set tools/test.sh starts (its URLs come from the environment, or from
/// `.tally/services.env` after starting it when run by hand). Tests that stop, kill or restart
/// a service make a `PrivateSet` so tests running beside them are unharmed.
enum TestServices {
    static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // Support, DomainTests, Tests, file
        return url
    }()

    /// URLs of the shared set, started on first use if the environment names none.
    static let shared: Endpoints = {
        let env = ProcessInfo.processInfo.environment
        if let database = env["DATABASE_URL"], let redis = env["REDIS_URL"] {
            return Endpoints(databaseURL: database, redisURL: redis)
        }
        let state = repositoryRoot.appendingPathComponent(".tally")
        do {
            try runServicesScript(["start"], stateDirectory: state)
            return try Endpoints(environmentFile: state.appendingPathComponent("services.env"))
        } catch {
            fatalError("could not start the shared test services: \(error)")
        }
    }()

    struct Endpoints: Sendable {
        var databaseURL: String
        var redisURL: String

        init(databaseURL: String, redisURL: String) {
            self.databaseURL = databaseURL
            self.redisURL = redisURL
        }

        init(environmentFile: URL) throws {
            var values: [String: String] = [:]
            for line in try String(contentsOf: environmentFile, encoding: .utf8).split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                values[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            self.databaseURL = values["DATABASE_URL"] ?? ""
            self.redisURL = values["REDIS_URL"] ?? ""
        }
    }

    enum Service: String, Sendable {
        case postgres, redis
    }

    /// A throwaway PostgreSQL + Redis of one test, in a temporary state folder.
    final class PrivateSet: Sendable {
        let stateDirectory: URL
        let endpoints: Endpoints

        /// Starts the named services (both by default) in a new folder.
        init(_ services: [Service] = [.postgres, .redis]) throws {
            let parent = URL(fileURLWithPath: NSTemporaryDirectory())
                .appendingPathComponent("tally-test-\(UUID().uuidString.prefix(8))")
            stateDirectory = parent
            for service in services {
                try runServicesScript(["start", service.rawValue], stateDirectory: parent)
            }
            endpoints = try Endpoints(environmentFile: parent.appendingPathComponent("services.env"))
        }

        func stop(_ service: Service) throws {
            try runServicesScript(["stop", service.rawValue], stateDirectory: stateDirectory)
        }

        func start(_ service: Service) throws {
            try runServicesScript(["start", service.rawValue], stateDirectory: stateDirectory)
        }

        func restart(_ service: Service) throws {
            try runServicesScript(["restart", service.rawValue], stateDirectory: stateDirectory)
        }

        /// Stops everything and removes the folder; call it at the end of the test.
        func destroy() {
            try? runServicesScript(["stop"], stateDirectory: stateDirectory)
            try? FileManager.default.removeItem(at: stateDirectory)
        }
    }

    struct ScriptFailed: Error, CustomStringConvertible {
        var arguments: [String]
        var status: Int32
        var output: String
        var description: String { "services.sh \(arguments.joined(separator: " ")) exited \(status): \(output)" }
    }

    /// Runs tools/services.sh synchronously (tests only; it takes a second or two).
    static func runServicesScript(_ arguments: [String], stateDirectory: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [repositoryRoot.appendingPathComponent("tools/services.sh").path] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TALLY_STATE_DIR"] = stateDirectory.path
        process.environment = environment
        // Output goes to a file, not a pipe: a daemon started by the script could hold a
        // pipe open and a read to EOF would never end.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("services-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try? handle.close()
        guard process.terminationStatus == 0 else {
            throw ScriptFailed(
                arguments: arguments, status: process.terminationStatus,
                output: (try? String(contentsOf: log, encoding: .utf8)) ?? "")
        }
    }
}
