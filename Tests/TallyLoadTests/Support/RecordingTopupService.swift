import Codec
import RPCServer

/// tally.v1.TopupService/Topup as the real service answers a partner, reduced to what a load
/// run can observe: the first call of an idempotency key creates a top-up, every later one
/// returns it with `replayed` set. It takes a moment per call, as the real one does, so
/// retries can overlap the call they repeat.
struct RecordingTopupService: RPCService {
    let ledger: TopupLedger

    var methods: [RPCMethod] {
        [
            .unary("/tally.v1.TopupService/Topup") { [ledger] (request: Tally_V1_TopupRequest, context: ServerContext) in
                let replayed = ledger.record(request, apiKey: context.metadata["x-api-key"])
                try await Task.sleep(for: .milliseconds(2))
                var topup = Tally_V1_Topup()
                topup.id = "t-" + request.idempotencyKey
                topup.idempotencyKey = request.idempotencyKey
                topup.phoneNumber = request.phoneNumber
                topup.amount = request.amount
                topup.carrier = request.carrier
                topup.status = .pending
                var response = Tally_V1_TopupResponse()
                response.topup = topup
                response.replayed = replayed
                return response
            }
        ]
    }
}
