import Units

extension RedisConnectionSlot {
    /// Sends `command` and `WAIT replicas timeout` back to back on this connection, so the WAIT
    /// covers the command's write (WAIT counts the replicas that have every earlier write of
    /// its own connection). `done` gets the command's reply and how many replicas confirmed.
    func sendAcknowledged(
        _ command: RedisCommand, replicas: Int, timeout: Duration,
        done: @escaping @Sendable (Result<(reply: RESPValue, replicas: Int), RedisError>) -> Void
    ) {
        let first = FirstReply()
        send(command, handler: .inPlace { result in first.result = result.map(\.value) })
        send(RedisCommand("WAIT", RedisArgument(replicas), RedisArgument(max(1, timeout.millisecondsRoundedUp))), handler: .inPlace { result in
            guard let reply = first.result else {
                return done(.failure(RedisError(.unexpectedReply, "WAIT answered before the command it follows")))
            }
            done(reply.flatMap { reply in
                result.map { (reply, Int($0.int ?? 0)) }
            })
        })
    }
}

/// The first of two replies of one connection, kept until the second arrives.
// @unchecked: set and read only on the connection's loop, where replies arrive in order.
private final class FirstReply: @unchecked Sendable {
    var result: Result<RESPValue, RedisError>?
}
