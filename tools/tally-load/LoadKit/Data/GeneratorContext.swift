/// What template functions draw on while one worker builds its requests: its own random
/// generator (no sharing between workers), the user population, and the request number.
public struct GeneratorContext: Sendable {
    public var random: FastRandom
    /// Size of the user population `{{randomUser}}` draws from (`--users`).
    public var users: Int
    /// Elements a `"{{repeat}}"` array gets (`--batch-size`).
    public var batchSize: Int
    /// The request's number in the run, unique across workers (`{{seq}}`), from 1.
    public var sequence: Int
    /// The message's number within its stream (`{{msg}}`), from 1; 1 for unary requests.
    public var messageIndex: Int
    /// The element's 0-based index in the `{{repeat}}` array being built (`{{itemDiv M}}`,
    /// `{{itemMod M}}`); 0 outside one.
    public var itemIndex = 0

    public init(seed: UInt64, users: Int, batchSize: Int) {
        self.init(random: FastRandom(seed: seed), users: users, batchSize: batchSize)
    }

    public init(random: FastRandom, users: Int, batchSize: Int) {
        self.random = random
        self.users = max(1, users)
        self.batchSize = max(1, batchSize)
        self.sequence = 1
        self.messageIndex = 1
    }
}
