import Codec
public import Domain

/// `tally.v1.PresenceService`: one bidi `Connect` stream per device, handed to the domain's
/// `Presence`. The stream's task reads the client's messages; a child task writes what the
/// session's outbox releases (at most one message per interval).
public struct PresenceService: RPCService {
    let presence: Presence

    public init(presence: Presence) {
        self.presence = presence
    }

    public var methods: [RPCMethod] {
        [
            .bidirectionalStreaming(Self.path("Connect"), access: .endUser) {
                (requests: RequestStream<Tally_V1_PresenceClientMessage>, responses: ResponseWriter<Tally_V1_PresenceServerMessage>,
                 context: ServerContext) in
                var messages = requests.makeAsyncIterator()
                guard let first = try await messages.next() else { return }
                guard case .hello(let hello) = first.kind else {
                    throw RPCError(.failedPrecondition, "the first message of a presence stream must be a Hello")
                }
                if let user = context.caller.endUserID, user != hello.userId {
                    throw RPCError(.permissionDenied, "hello.user_id is not the session token's user")
                }
                let session = try await presence.open(hello) { error in context.endCall(error) }
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            while let message = await session.outbox.next() { try await responses.write(message) }
                        }
                        do {
                            while let message = try await messages.next() { try await session.handle(message) }
                            // Half-closed: end with OK now, even if the writer waits for a client that reads no more.
                            context.endCall(nil)
                        } catch {
                            context.endCall(error)
                            throw error
                        }
                        group.cancelAll()
                    }
                } catch {
                    await session.close()
                    throw error
                }
                await session.close()
            },
        ]
    }

    private static func path(_ method: String) -> String {
        RPCMethod.path(service: "tally.v1.PresenceService", method: method)
    }
}
