import NIOCore

/// Who waits for a command's reply: a promise of the whole reply as a `RESPValue`, or a
/// closure that reads the reply in place on the connection's loop (hot reads decode into
/// their own types without the `RESPValue` copy).
enum RedisReplyHandler: Sendable {
    case value(EventLoopPromise<RESPValue>)
    /// Called once, on the connection's loop, with the reply or the connection's failure.
    case inPlace(@Sendable (Result<RESPReply, RedisError>) -> Void)

    func deliver(_ reply: RESPReply) {
        switch self {
        case .value(let promise): promise.succeed(reply.value)
        case .inPlace(let body): body(.success(reply))
        }
    }

    func fail(_ error: RedisError) {
        switch self {
        case .value(let promise): promise.fail(error)
        case .inPlace(let body): body(.failure(error))
        }
    }
}
