import Codec
import Storage
import Testing

@testable import Domain

/// The one mapping from storage errors to gRPC statuses: one precise status per failure, and
/// nothing of SQL, addresses or Redis' own messages in what a client sees.
@Suite("Storage errors as gRPC statuses")
struct StorageErrorsStatusTests {
    @Test(arguments: [
        (PostgresError(.poolTimeout, "database connection pool exhausted"), StatusCode.unavailable),
        (PostgresError(.connectionFailed, "could not connect to 10.0.0.1:5432: password authentication failed"), .unavailable),
        (PostgresError(.connectionLost, "x"), .unavailable),
        (PostgresError(.statementTimeout, "x", sqlState: "57014"), .deadlineExceeded),
        (PostgresError(.cancelled, "x", sqlState: "57014"), .cancelled),
        (PostgresError(.server, "statement failed: duplicate key", sqlState: "23505"), .alreadyExists),
        (PostgresError(.server, "statement failed", sqlState: "40001"), .aborted),
        (PostgresError(.server, "statement failed: syntax error at or near \"SELEC\"", sqlState: "42601"), .internalError),
        (PostgresError(.decoding, "column 2 is not an integer"), .internalError),
    ])
    func postgres(error: PostgresError, status: StatusCode) {
        #expect(error.rpcError.code == status)
        #expect(!error.rpcError.message.contains("SELEC") && !error.rpcError.message.contains("10.0.0.1"))
        #expect(!error.rpcError.message.contains("duplicate key") && !error.rpcError.message.contains("column"))
    }

    @Test(arguments: [
        (RedisError(.unavailable, "cannot connect to Redis at 10.0.0.2:6379"), StatusCode.unavailable),
        (RedisError(.shutdown, "client shut down"), .unavailable),
        (RedisError(.timeout, "no reply within 2 s"), .unavailable),
        (RedisError(.server, "WRONGTYPE Operation against a key holding the wrong kind of value"), .internalError),
        (RedisError(.unexpectedReply, "leaderboard_rank"), .internalError),
    ])
    func redis(error: RedisError, status: StatusCode) {
        #expect(error.rpcError.code == status)
        #expect(!error.rpcError.message.contains("WRONGTYPE") && !error.rpcError.message.contains("10.0.0.2"))
    }

    @Test("a rate-limit refusal is RESOURCE_EXHAUSTED with when to come back")
    func rateLimited() {
        let refusal = RateLimitDecision(allowed: false, remaining: 0, retryAfter: .milliseconds(1500)).rejection("too many")
        #expect(refusal.code == .resourceExhausted && refusal.message == "too many")
        #expect(refusal.metadata["retry-after-ms"] == "1500" && refusal.metadata["x-ratelimit-remaining"] == "0")
    }
}
