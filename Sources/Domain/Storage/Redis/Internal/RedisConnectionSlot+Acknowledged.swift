import NIOCore
import Units

extension RedisConnectionSlot {
    /// Writes sent on one connection whose `WAIT` has not gone out yet, writes queued while the
    /// connection opens, and how many writes the `WAIT` in flight covers (0: none in flight).
    struct Acknowledgements {
        var unconfirmed: [AcknowledgedWrite] = []
        var awaitingConnection: [AcknowledgedWrite] = []
        var inFlight = 0

        var waitInFlight: Bool { inFlight > 0 }
        /// Writes sent or queued whose replicas have not confirmed them yet.
        var count: Int { unconfirmed.count + awaitingConnection.count + inFlight }
    }

    /// Sends `command`, then counts the replicas that have its write with a `WAIT` on the same
    /// connection (WAIT counts the replicas that have every earlier write of its connection).
    /// `done` gets the command's reply and how many replicas confirmed.
    ///
    /// One WAIT covers every write sent before it, and Redis holds a connection's later
    /// commands while its WAIT blocks: a WAIT per write would make the connection's writes wait
    /// for replication one by one. So at most one WAIT is in flight per connection; writes
    /// sent meanwhile share the next one, sent as soon as it returns (group commit).
    func sendAcknowledged(
        _ command: RedisCommand, replicas: Int, timeout: Duration,
        done: @escaping @Sendable (Result<(reply: RESPValue, replicas: Int), RedisError>) -> Void
    ) {
        guard let connection else {
            // Not connected: the command waits with the others for the connection being
            // opened, and one WAIT follows all of them once it is (`connectionOpened`).
            let write = AcknowledgedWrite(connection: nil, replicas: replicas, timeout: timeout, done: done)
            send(command, handler: .inPlace { write.reply = $0.map(\.value) })
            if case .failure(let error) = write.reply { return write.finish(confirmed: .failure(error)) }  // refused at once
            acknowledgements.awaitingConnection.append(write)
            return
        }
        let write = AcknowledgedWrite(connection: ObjectIdentifier(connection), replicas: replicas, timeout: timeout, done: done)
        connection.send(command, handler: .inPlace { write.reply = $0.map(\.value) })
        acknowledgements.unconfirmed.append(write)
        if !acknowledgements.waitInFlight { sendWait() }
    }

    /// Called once the commands queued while connecting have gone out on the new connection:
    /// their writes share the next WAIT. (Without a connection, the queued commands went on
    /// waiting for the next one, and so do their writes.)
    func connectionOpened() {
        guard let connection, !acknowledgements.awaitingConnection.isEmpty else { return }
        let writes = acknowledgements.awaitingConnection
        acknowledgements.awaitingConnection = []
        for write in writes { write.connection = ObjectIdentifier(connection) }
        acknowledgements.unconfirmed += writes
        if !acknowledgements.waitInFlight { sendWait() }
    }

    /// Fails the writes queued for a connection that could not be opened (their commands
    /// failed with `error` just before).
    func connectionFailed(_ error: RedisError) {
        let writes = acknowledgements.awaitingConnection
        acknowledgements.awaitingConnection = []
        for write in writes { write.finish(confirmed: .failure(error)) }
    }

    /// One WAIT for every write sent since the last one.
    private func sendWait() {
        let writes = acknowledgements.unconfirmed
        acknowledgements.unconfirmed = []
        guard !writes.isEmpty else { return }
        guard let connection else {
            for write in writes { write.finish(confirmed: .failure(Self.lost)) }
            return
        }
        let current = ObjectIdentifier(connection)
        // A write sent on a connection since lost cannot be covered by a WAIT on another one.
        let covered = writes.filter { $0.connection == current }
        for write in writes where write.connection != current { write.finish(confirmed: .failure(Self.lost)) }
        guard !covered.isEmpty else { return }
        let replicas = covered.map(\.replicas).max() ?? 0
        let timeout = covered.map(\.timeout).max() ?? .zero
        acknowledgements.inFlight += covered.count
        let slot = NIOLoopBound(self, eventLoop: loop)
        connection.send(Self.wait(replicas, timeout), handler: .inPlace { result in
            slot.value.acknowledgements.inFlight -= covered.count
            for write in covered { write.finish(confirmed: result.map(\.value)) }
            slot.value.sendWait()
        })
    }

    private static func wait(_ replicas: Int, _ timeout: Duration) -> RedisCommand {
        RedisCommand("WAIT", RedisArgument(replicas), RedisArgument(max(1, timeout.millisecondsRoundedUp)))
    }

    private static var lost: RedisError {
        RedisError(.unavailable, "the Redis connection was lost before replicas could confirm the write")
    }
}

/// A write waiting for its replicas' confirmation: its reply, kept until the WAIT's arrives.
// @unchecked: set and read only on the connection's loop, where replies arrive in order.
final class AcknowledgedWrite: @unchecked Sendable {
    /// The connection it was sent on (nil while queued for one being opened).
    var connection: ObjectIdentifier?
    let replicas: Int
    let timeout: Duration
    private let done: @Sendable (Result<(reply: RESPValue, replicas: Int), RedisError>) -> Void
    var reply: Result<RESPValue, RedisError>?

    init(connection: ObjectIdentifier?, replicas: Int, timeout: Duration,
         done: @escaping @Sendable (Result<(reply: RESPValue, replicas: Int), RedisError>) -> Void) {
        self.connection = connection
        self.replicas = replicas
        self.timeout = timeout
        self.done = done
    }

    /// Completes with the write's reply and the WAIT's count (or the first failure).
    func finish(confirmed: Result<RESPValue, RedisError>) {
        guard let reply else {
            if case .failure(let error) = confirmed { return done(.failure(error)) }
            return done(.failure(RedisError(.unexpectedReply, "WAIT answered before the command it follows")))
        }
        done(reply.flatMap { reply in confirmed.map { (reply, Int($0.int ?? 0)) } })
    }
}
