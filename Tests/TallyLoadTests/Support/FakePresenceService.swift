import Codec
import RPCServer

/// `tally.v1.PresenceService/Connect` as the load tool sees it, without Redis: every state is
/// forwarded at once to the user's watchers (no coalescing), a Subscribe is answered with a
/// snapshot. The hub can silence one user (its changes are stored, never forwarded), so a test
/// can show that the load's lost-change check catches a server that loses changes.
struct FakePresenceService: RPCService {
    let hub: FakePresenceHub

    var methods: [RPCMethod] {
        [
            .bidirectionalStreaming("/tally.v1.PresenceService/Connect") {
                [hub] (requests: RequestStream<Tally_V1_PresenceClientMessage>, writer: ResponseWriter<Tally_V1_PresenceServerMessage>,
                       _: ServerContext) in
                let (outbox, mailbox) = AsyncStream.makeStream(of: Tally_V1_PresenceServerMessage.self)
                let watcher = hub.register(mailbox)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Other streams' changes arrive in the mailbox; only this task writes.
                    group.addTask { for await message in outbox { try await writer.write(message) } }
                    var user: String?
                    do {
                        for try await request in requests {
                            switch request.kind {
                            case .hello(let hello):
                                user = hello.userId
                                hub.set(hello.userId, status: .online, activity: "")
                            case .subscribe(let subscribe):
                                hub.watch(watcher, users: subscribe.userIds)
                            case .status(let update):
                                if let user { hub.set(user, status: update.status, activity: update.activity) }
                            case .heartbeat, nil:
                                break
                            }
                        }
                    } catch {
                        hub.leave(watcher, user: user)
                        throw error
                    }
                    hub.leave(watcher, user: user)
                    try await group.waitForAll()
                }
            },
        ]
    }
}
