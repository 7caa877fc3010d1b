import Codec
import Domain
public import Storage

/// Enforces `RPCRateLimit.perCustomer`: each partner customer's calls per minute, exactly, over
/// every instance (`SlidingWindowLimiter`), at the key's own rate or `defaultPerMinute`.
///
/// Over the limit: RESOURCE_EXHAUSTED naming the limit, with `retry-after-ms`. With Redis
/// unreachable and the limiter set to refuse: UNAVAILABLE.
public struct CustomerRateLimit: ServerInterceptor {
    let limiter: SlidingWindowLimiter
    let defaultPerMinute: Int

    public init(limiter: SlidingWindowLimiter, defaultPerMinute: Int) {
        self.limiter = limiter
        self.defaultPerMinute = defaultPerMinute
    }

    public func applies(to method: RPCMethod) -> Bool { method.rateLimit == .perCustomer }

    public func enforces(_ limit: RPCRateLimit) -> Bool { limit == .perCustomer }

    public func intercept(_ context: inout ServerContext, method: RPCMethod) async throws {
        guard case .partner(let customer, _, let rate) = context.caller else {
            throw RPCError(.internalError, "per-customer limit on a call without a partner (interceptor order)")
        }
        let perMinute = rate ?? defaultPerMinute
        let decision: RateLimitDecision
        do {
            decision = try await limiter.decide(key: customer, limit: .perMinute(perMinute))
        } catch {
            throw RPCError(.unavailable, "the per-customer limit cannot be checked (Redis unreachable); retry later")
        }
        ProductMetrics.rateLimitDecided(.topupCustomer, allowed: decision.allowed)
        guard decision.allowed else {
            throw decision.rejection("rate limit of \(perMinute) calls per minute for customer \(customer) exceeded")
        }
    }
}
