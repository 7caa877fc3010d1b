import Codec
public import Domain

/// `tally.v1.TopupService`: partners' top-ups. Every method needs a partner API key (the
/// interceptor puts its customer in the context); `Topup` is under the per-customer limit.
public struct TopupService: RPCService {
    let topups: Topups

    public init(topups: Topups) {
        self.topups = topups
    }

    public var methods: [RPCMethod] {
        [
            .unary(Self.path("Topup"), access: .partner, rateLimit: .perCustomer) {
                (request: Tally_V1_TopupRequest, context: ServerContext) in
                let order = TopupOrder(
                    idempotencyKey: request.idempotencyKey, phoneNumber: request.phoneNumber,
                    amountMinorUnits: request.amount?.minorUnits ?? 0, currency: request.amount?.currency ?? "", carrier: request.carrier)
                let (topup, replayed) = try await topups.create(order, customer: try Self.customer(context))
                var response = Tally_V1_TopupResponse()
                response.topup = Self.message(topup)
                response.replayed = replayed
                return response
            },
            .unary(Self.path("GetTopup"), access: .partner) { (request: Tally_V1_GetTopupRequest, context: ServerContext) in
                var response = Tally_V1_GetTopupResponse()
                response.topup = Self.message(try await topups.get(id: request.id, customer: try Self.customer(context), deadline: context.deadline))
                return response
            },
            .unary(Self.path("ListTopups"), access: .partner) { (request: Tally_V1_ListTopupsRequest, context: ServerContext) in
                let filter = TopupFilter(
                    state: try Self.state(request.status),
                    createdFromMs: request.createdFromMs == 0 ? nil : request.createdFromMs,
                    createdToMs: request.createdToMs == 0 ? nil : request.createdToMs)
                let page = try await topups.list(
                    customer: try Self.customer(context), filter: filter, limit: request.limit == 0 ? 50 : Int(request.limit),
                    cursor: request.cursor, deadline: context.deadline)
                var response = Tally_V1_ListTopupsResponse()
                response.topups = page.topups.map(Self.message)
                response.nextCursor = page.nextCursor
                return response
            },
            .serverStreaming(Self.path("WatchTopup"), access: .partner) {
                (request: Tally_V1_WatchTopupRequest, updates: ResponseWriter<Tally_V1_WatchTopupResponse>, context: ServerContext) in
                try await topups.watch(id: request.id, customer: try Self.customer(context)) { topup in
                    var update = Tally_V1_WatchTopupResponse()
                    update.topup = Self.message(topup)
                    try await updates.write(update)
                }
            },
        ]
    }

    private static func customer(_ context: ServerContext) throws -> String {
        guard let customer = context.caller.customerID else { throw RPCError(.unauthenticated, "no partner API key") }
        return customer
    }

    private static func state(_ status: Tally_V1_TopupStatus) throws -> Topup.State? {
        switch status {
        case .unspecified: nil
        case .pending: .pending
        case .processing: .processing
        case .succeeded: .succeeded
        case .failed: .failed
        case .unrecognized(let value): throw RPCError(.invalidArgument, "status: unknown value \(value)")
        }
    }

    static func message(_ topup: Topup) -> Tally_V1_Topup {
        var message = Tally_V1_Topup()
        message.id = topup.id
        message.customerId = topup.customerID
        message.idempotencyKey = topup.idempotencyKey
        message.phoneNumber = topup.phoneNumber
        var amount = Tally_V1_Money()
        amount.minorUnits = topup.amountMinorUnits
        amount.currency = topup.currency
        message.amount = amount
        message.carrier = topup.carrier
        message.status = switch topup.state {
        case .pending: .pending
        case .processing: .processing
        case .succeeded: .succeeded
        case .failed: .failed
        }
        message.failureReason = topup.failureReason
        message.providerReference = topup.providerReference
        message.attempts = Int32(clamping: topup.attempts)
        message.createdAtMs = topup.createdAtMs
        message.updatedAtMs = topup.updatedAtMs
        return message
    }

    private static func path(_ method: String) -> String {
        RPCMethod.path(service: "tally.v1.TopupService", method: method)
    }
}
