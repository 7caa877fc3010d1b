public import Foundation

extension PostgresConfiguration {
    /// Parses `postgresql://[user[:password]@]host[:port][/database][?key=value&...]`
    /// (also `postgres://`), percent-decoding each part.
    ///
    /// `connect_timeout` (seconds, as libpq reads it) sets `connectTimeout`; other query
    /// parameters become libpq connection keywords. A missing user or database defaults to
    /// "postgres", as libpq's would to the OS user, which a server process should not depend on.
    public init(url: String) throws(PostgresError) {
        guard let components = URLComponents(string: url),
            let scheme = components.scheme, scheme == "postgresql" || scheme == "postgres"
        else {
            throw PostgresError(.invalidConfiguration, "database URL must look like postgresql://user:password@host:port/database")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.init(
            host: components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1",
            port: components.port ?? 5432,
            user: components.user.flatMap { $0.isEmpty ? nil : $0 } ?? "postgres",
            password: components.password,
            database: database.removingPercentEncoding.flatMap { $0.isEmpty ? nil : $0 } ?? "postgres")
        for item in components.queryItems ?? [] {
            guard let value = item.value else { continue }
            switch item.name {
            case "connect_timeout":
                guard let seconds = Int(value), seconds > 0 else {
                    throw PostgresError(.invalidConfiguration, "connect_timeout in the database URL must be a positive number of seconds")
                }
                connectTimeout = .seconds(seconds)
            case "application_name":
                applicationName = value
            case "host", "hostaddr":
                host = value  // libpq's form for Unix sockets: ?host=/var/run/postgresql
            default:
                connectionOptions[item.name] = value
            }
        }
    }

    /// `DATABASE_URL` (or the variable named by `urlVariable`) plus the pool settings
    /// DB_POOL_MIN, DB_POOL_MAX, DB_CONNECT_TIMEOUT_MS, DB_POOL_WAIT_TIMEOUT_MS,
    /// DB_IDLE_TIMEOUT_MS, DB_MAX_USES (0: unlimited) and DB_STATEMENT_TIMEOUT_MS (0: none).
    /// Nil when the URL variable is unset or empty.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment,
        urlVariable: String = "DATABASE_URL"
    ) throws(PostgresError) -> PostgresConfiguration? {
        guard let url = environment[urlVariable], !url.isEmpty else { return nil }
        var config: PostgresConfiguration
        do {
            config = try PostgresConfiguration(url: url)
        } catch {
            throw PostgresError(.invalidConfiguration, "\(urlVariable): \(error.message)")
        }
        func integer(_ name: String, _ range: ClosedRange<Int>) throws(PostgresError) -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw PostgresError(
                    .invalidConfiguration, "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
            }
            return value
        }
        if let value = try integer("DB_POOL_MAX", 1...10_000) { config.maxConnections = value }
        if let value = try integer("DB_POOL_MIN", 0...10_000) { config.minConnections = value }
        if let value = try integer("DB_CONNECT_TIMEOUT_MS", 1...3_600_000) { config.connectTimeout = .milliseconds(value) }
        if let value = try integer("DB_POOL_WAIT_TIMEOUT_MS", 0...3_600_000) { config.waitTimeout = .milliseconds(value) }
        if let value = try integer("DB_IDLE_TIMEOUT_MS", 1...86_400_000) { config.idleTimeout = .milliseconds(value) }
        if let value = try integer("DB_MAX_USES", 0...Int.max) { config.maxUsesPerConnection = value == 0 ? nil : value }
        if let value = try integer("DB_STATEMENT_TIMEOUT_MS", 0...86_400_000) {
            config.defaultStatementTimeout = value == 0 ? nil : .milliseconds(value)
        }
        guard config.minConnections <= config.maxConnections else {
            throw PostgresError(.invalidConfiguration, "DB_POOL_MIN (\(config.minConnections)) must not exceed DB_POOL_MAX (\(config.maxConnections))")
        }
        return config
    }
}
