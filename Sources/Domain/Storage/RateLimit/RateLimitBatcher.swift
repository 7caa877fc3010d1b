import NIOCore
import NIOPosix

/// Single decisions asked for on one event loop during one pass of its work queue, decided
/// together: one batched `RateLimiter.decide` (a script call per shard touched) instead of
/// a script call each.
///
/// Concurrent RPC handlers on a loop each deciding their own key (a top-up's customer, a
/// stream's peer) then cost Redis a few script calls per loop pass, not one per request. The
/// first decision of a pass schedules the flush behind the work already queued on the loop,
/// so the batch holds whatever that work asks for; a lone decision waits one loop hop.
final class RateLimitBatcher: @unchecked Sendable {  // `pending` is touched only on `loop`
    private struct Request {
        var key: String
        var cost: Int
        var limit: RateLimit
        var continuation: CheckedContinuation<RateLimitDecision, Never>
    }

    let loop: any EventLoop
    private var pending: [Request] = []

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Queues a decision for the loop's current pass.
    func decide(key: String, cost: Int, limit: RateLimit, with limiter: RateLimiter) async -> RateLimitDecision {
        await withCheckedContinuation { continuation in
            let request = Request(key: key, cost: cost, limit: limit, continuation: continuation)
            if loop.inEventLoop {
                enqueue(request, with: limiter)
            } else {
                loop.execute { self.enqueue(request, with: limiter) }
            }
        }
    }

    private func enqueue(_ request: Request, with limiter: RateLimiter) {
        pending.append(request)
        if pending.count == 1 {
            loop.execute { self.flush(with: limiter) }
        }
    }

    private func flush(with limiter: RateLimiter) {
        let batch = pending
        pending = []
        // One batched decision per limit: a script call carries one limit.
        for requests in Dictionary(grouping: batch, by: \.limit).values {
            Task {
                let decisions = await limiter.decide(requests.map { (key: $0.key, cost: $0.cost) }, limit: requests[0].limit)
                for (request, decision) in zip(requests, decisions) {
                    request.continuation.resume(returning: decision)
                }
            }
        }
    }
}
