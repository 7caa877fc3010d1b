/// One message to one user, as a domain records it and a sink receives it.
public struct NotificationMessage: Sendable, Hashable {
    /// Stable across retries and re-dispatches (e.g. `reward:<quiz>:<distribution>:<user>`): the
    /// outbox row's key, the queue's job id, and what the sink deduplicates on.
    public var id: String
    /// The user the message goes to; its rate limit and any pause a sink asks for apply per
    /// destination.
    public var destination: String
    /// What the message is about, e.g. `quiz.reward`.
    public var kind: String
    /// JSON text, passed to the sink as it is.
    public var body: String

    public init(id: String, destination: String, kind: String, body: String) {
        self.id = id
        self.destination = destination
        self.kind = kind
        self.body = body
    }
}
