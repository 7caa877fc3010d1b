import Codec
import Domain
import Foundation

/// Partners' API keys (the same operations as `tally keys`) and top-up statistics.
extension AdminService {
    var partnerMethods: [RPCMethod] {
        guard let partners = sources.partners else { return [] }
        let keys = partners.keys
        return [
            .unary(Self.path("CreateApiKey"), access: .admin) { (request: Tally_V1_CreateApiKeyRequest, _: ServerContext) in
                let created = try await keys.create(
                    customer: request.customerId, name: request.name, ratePerMinute: request.ratePerMin == 0 ? nil : Int(request.ratePerMin))
                var response = Tally_V1_CreateApiKeyResponse()
                response.key = Self.message(created.record)
                response.secret = created.secret
                return response
            },
            .unary(Self.path("ListApiKeys"), access: .admin) { (request: Tally_V1_ListApiKeysRequest, _: ServerContext) in
                var response = Tally_V1_ListApiKeysResponse()
                response.keys = try await keys.list(customer: request.customerId.isEmpty ? nil : request.customerId).map(Self.message)
                return response
            },
            .unary(Self.path("RevokeApiKey"), access: .admin) { (request: Tally_V1_RevokeApiKeyRequest, _: ServerContext) in
                var response = Tally_V1_RevokeApiKeyResponse()
                response.key = Self.message(try await keys.revoke(id: request.id))
                return response
            },
            .unary(Self.path("RotateApiKey"), access: .admin) { (request: Tally_V1_RotateApiKeyRequest, _: ServerContext) in
                guard request.overlapMs >= 0 else { throw RPCError(.invalidArgument, "overlap_ms: must not be negative") }
                let rotated = try await keys.rotate(id: request.id, overlap: .milliseconds(request.overlapMs))
                var response = Tally_V1_RotateApiKeyResponse()
                response.oldKey = Self.message(rotated.old)
                response.newKey = Self.message(rotated.new)
                response.secret = rotated.secret
                return response
            },
            .unary(Self.path("TopupStats"), access: .admin) { (request: Tally_V1_TopupStatsRequest, context: ServerContext) in
                try await topupStats(customer: request.customerId.isEmpty ? nil : request.customerId, deadline: context.deadline)
            },
        ]
    }

    func topupStats(customer: String?, deadline: ContinuousClock.Instant?) async throws -> Tally_V1_TopupStatsResponse {
        guard let partners = sources.partners else { throw RPCError(.unimplemented, "top-ups are not served by this instance") }
        let statistics = try await partners.topups.statistics(customer: customer)
        var response = Tally_V1_TopupStatsResponse()
        response.total = Self.message(statistics.total)
        response.customers = customer == nil ? statistics.customers.map(Self.message) : []
        response.providerCallsLastHour = statistics.providerCallsLastHour
        response.providerLatencyP50Ms = statistics.latencyP50
        response.providerLatencyP90Ms = statistics.latencyP90
        response.providerLatencyP99Ms = statistics.latencyP99
        if let queue = sources.queues.first(where: { $0.name == Topups.queueName }), let stats = try? await queueStats([queue]).first {
            response.queue = stats
        }
        response.limitMode = partners.limiter.mode
        return response
    }

    /// Top-ups per customer and state, revenue, today's figures, provider latency, limit mode.
    func refreshTopupMetrics(_ stats: Tally_V1_TopupStatsResponse) {
        let pulled = sources.metrics.pulled
        for customer in [stats.total ?? Tally_V1_CustomerTopupStats()] + stats.customers {
            let who = customer.customerId.isEmpty ? "all" : customer.customerId
            for state in customer.states { pulled.gauge("tally_topups", Double(state.count), [("customer", who), ("state", state.state)]) }
            for revenue in customer.revenue {
                pulled.gauge("tally_topup_revenue_minor_units", Double(revenue.minorUnits), [("customer", who), ("currency", revenue.currency)])
            }
            pulled.gauge("tally_topups_today", Double(customer.todayCount), [("customer", who)])
            for amount in customer.todayAmounts {
                pulled.gauge("tally_topup_today_minor_units", Double(amount.minorUnits), [("customer", who), ("currency", amount.currency)])
            }
        }
        pulled.gauge("tally_topup_provider_calls_last_hour", Double(stats.providerCallsLastHour))
        pulled.gauge("tally_topup_provider_latency_ms", stats.providerLatencyP50Ms, [("quantile", "0.5")])
        pulled.gauge("tally_topup_provider_latency_ms", stats.providerLatencyP90Ms, [("quantile", "0.9")])
        pulled.gauge("tally_topup_provider_latency_ms", stats.providerLatencyP99Ms, [("quantile", "0.99")])
        for mode in ["redis", "local", "refuse"] {
            pulled.gauge("tally_topup_limit_degraded", mode == stats.limitMode && mode != "redis" ? 1 : 0, [("mode", mode)])
        }
    }

    static func message(_ record: ApiKeyRecord) -> Tally_V1_ApiKey {
        var key = Tally_V1_ApiKey()
        key.id = record.id
        key.customerId = record.customerID
        key.name = record.name
        key.ratePerMin = Int32(clamping: record.ratePerMinute ?? 0)
        key.prefix = record.prefix
        key.createdAtMs = milliseconds(record.createdAt)
        key.lastUsedAtMs = record.lastUsedAt.map(milliseconds) ?? 0
        key.revokedAtMs = record.revokedAt.map(milliseconds) ?? 0
        key.expiresAtMs = record.expiresAt.map(milliseconds) ?? 0
        return key
    }

    static func message(_ customer: TopupStatistics.Customer) -> Tally_V1_CustomerTopupStats {
        var stats = Tally_V1_CustomerTopupStats()
        stats.customerId = customer.customerID
        stats.states = Topup.State.allCases.map { state in
            var count = Tally_V1_TopupStateCount()
            count.state = state.rawValue
            count.count = customer.byState[state] ?? 0
            return count
        }
        stats.revenue = customer.revenue.map(message)
        stats.todayCount = customer.todayCount
        stats.todayAmounts = customer.todayAmounts.map(message)
        return stats
    }

    static func message(_ amount: TopupStatistics.Amount) -> Tally_V1_CurrencyAmount {
        var message = Tally_V1_CurrencyAmount()
        message.currency = amount.currency
        message.minorUnits = amount.minorUnits
        message.count = amount.count
        return message
    }

    private static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
}
