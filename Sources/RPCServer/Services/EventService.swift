import Codec
public import Domain

/// `tally.v1.EventService`: events in over gRPC, handed to the domain's `EventIngestor`.
public struct EventService: RPCService {
    let ingestor: EventIngestor
    let recent: RecentEvents
    let counts: EventCounts

    public init(ingestor: EventIngestor, recent: RecentEvents, counts: EventCounts) {
        self.ingestor = ingestor
        self.recent = recent
        self.counts = counts
    }

    public var methods: [RPCMethod] {
        [
            .unary(Self.path("Track")) { (request: Tally_V1_TrackRequest, context: ServerContext) in
                let outcome = try await ingestor.ingest(request.events, peer: context.peer, deadline: context.deadline)
                var response = Tally_V1_TrackResponse()
                response.acceptedIds = outcome.accepted
                response.duplicateIds = outcome.duplicates
                response.rejected = outcome.rejected
                return response
            },
            .bidirectionalStreaming(Self.path("Stream")) {
                (batches: RequestStream<Tally_V1_EventBatch>, acks: ResponseWriter<Tally_V1_EventAck>, context: ServerContext) in
                for try await batch in batches {
                    try await acks.write(try await ack(batch, context))
                }
            },
            .unary(Self.path("Recent"), access: .admin) { (request: Tally_V1_RecentRequest, context: ServerContext) in
                let limit = request.limit == 0 ? 100 : Int(request.limit)
                guard (1...1000).contains(limit) else {
                    throw RPCError(.invalidArgument, "limit: must be between 1 and 1000, got \(request.limit)")
                }
                var response = Tally_V1_RecentResponse()
                response.events = try await recent.list(
                    limit: limit, user: request.userId.isEmpty ? nil : request.userId,
                    type: request.type.isEmpty ? nil : request.type, deadline: context.deadline)
                return response
            },
            // Admin only, like `Recent`: the counts and active users are the whole product's
            // business figures (every user's activity, purchases), for operators and internal
            // dashboards, not for the apps and games that send events.
            .unary(Self.path("Counts"), access: .admin) { (request: Tally_V1_CountsRequest, context: ServerContext) in
                try await counts.answer(request, deadline: context.deadline)
            },
        ]
    }

    /// One batch of a stream. A batch that is invalid as a whole (empty, too large) is
    /// answered with every event rejected, so the stream lives on; rate limits end it with
    /// RESOURCE_EXHAUSTED (the client backs off for retry-after).
    private func ack(_ batch: Tally_V1_EventBatch, _ context: ServerContext) async throws -> Tally_V1_EventAck {
        var ack = Tally_V1_EventAck()
        ack.sequence = batch.sequence
        do {
            let outcome = try await ingestor.ingest(batch.events, peer: context.peer)
            ack.acceptedIds = outcome.accepted
            ack.duplicateIds = outcome.duplicates
            ack.rejected = outcome.rejected
        } catch let error as RPCError where error.code == .invalidArgument {
            ack.rejected = batch.events.enumerated().map { index, event in
                var rejected = Tally_V1_RejectedEvent()
                rejected.id = event.id
                rejected.index = Int32(index)
                rejected.reason = error.message
                return rejected
            }
        }
        return ack
    }

    private static func path(_ method: String) -> String {
        RPCMethod.path(service: "tally.v1.EventService", method: method)
    }
}
