import Foundation

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
}
