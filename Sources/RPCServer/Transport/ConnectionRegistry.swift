import NIOCore
import Synchronization

/// The open connections of one server: enforces the connection limit, reaches every
/// connection for graceful shutdown, and keeps the counters admin stats report.
final class ConnectionRegistry: Sendable {
    private struct Entry: @unchecked Sendable {  // the connection is only touched on its own loop
        let connection: ServerConnection
        let eventLoop: any EventLoop
    }

    private let limit: Int
    private let entries = Mutex<[ObjectIdentifier: Entry]>([:])
    let statistics: ServerStatistics

    init(limit: Int, statistics: ServerStatistics) {
        self.limit = limit
        self.statistics = statistics
    }

    /// Registers a new connection; false when the limit is reached.
    func add(_ connection: ServerConnection) -> Bool {
        let added = entries.withLock { entries in
            guard entries.count < limit else { return false }
            entries[ObjectIdentifier(connection)] = Entry(connection: connection, eventLoop: connection.eventLoop)
            return true
        }
        if added { statistics.connectionOpened() } else { statistics.connectionRefused() }
        return added
    }

    func remove(_ connection: ServerConnection) {
        let removed = entries.withLock { $0.removeValue(forKey: ObjectIdentifier(connection)) != nil }
        if removed { statistics.connectionClosed() }
    }

    var count: Int { entries.withLock { $0.count } }

    /// Starts a graceful shutdown on every connection, each on its own loop.
    func shutdownAll(grace: Duration) {
        let all = entries.withLock { Array($0.values) }
        for entry in all {
            entry.eventLoop.execute { entry.connection.beginGracefulShutdown(grace: grace) }
        }
    }
}
