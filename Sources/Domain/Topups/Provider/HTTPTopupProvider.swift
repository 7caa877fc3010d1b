public import NIOCore
import AsyncHTTPClient
import Foundation
import Units

/// `TopupProvider` over JSON and HTTP: the API partners' mobile-top-up providers are asked to expose.
///
/// **Charge**: `POST {base}/charges` with the header `Idempotency-Key: <reference>` and
/// `{"reference": "t-1", "phone_number": "+4915112345678", "amount_minor_units": 1500, "currency": "EUR", "carrier": "", "attempt": 1}`
/// (`carrier` empty when unknown). The provider answers, and Tally reads:
/// - 200 or 201 `{"status": "succeeded", "provider_reference": "..."}`: succeeded.
/// - 200 `{"status": "declined", "reason": "..."}`, or any 4xx but 408, 409 and 429: declined,
///   with the body's `reason` or "HTTP <code>"; the top-up fails without retries.
/// - 429 or 503: retryable; the provider promises it did not process the request.
/// - 408, 409, any other 5xx or 2xx, or a 2xx body that is not as above: ambiguous, the provider
///   may have charged.
///
/// When no answer comes, what matters is whether the request can have left: connection refused,
/// DNS failures and connect timeouts are retryable; timeouts, resets and closes after the request
/// was written are ambiguous (see `DeliveryFailure`).
///
/// **Status**: `GET {base}/charges/{reference}` answers 200 with a body as above (charged or
/// declined) or 404 when the provider never charged the reference. Any other answer, or none,
/// is unknown, and Tally does not charge again until it knows.
///
/// Providers should treat a repeated `Idempotency-Key` as the same charge; Tally does not rely
/// on it: it charges again only after `retryable` or a status of `notFound`.
///
/// Every call ends within its `timeout`, response body included, and never throws.
public final class HTTPTopupProvider: TopupProvider {
    public let name = "http"

    /// Charge and status replies are a few hundred bytes; a larger body is not one of them.
    static let maxReplyBytes = 64 * 1024

    private let baseURL: String
    private let client: HTTPClient

    /// - Parameters:
    ///   - baseURL: e.g. `https://topups.example.com/v1`; paths are appended to it.
    ///   - connectTimeout: keep it below the calls' timeouts: a connect that outlives a call's
    ///     deadline leaves the call ambiguous, while a connect timeout proves nothing was sent.
    public init(baseURL: String, eventLoopGroup: any EventLoopGroup, connectTimeout: Duration = .seconds(2)) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base

        var configuration = HTTPClient.Configuration()
        // A redirected POST would turn into a GET or go to another host; a provider's API has
        // no reason to redirect, so a 3xx is taken as it comes (ambiguous).
        configuration.redirectConfiguration = .disallow
        // A refused connection fails its requests at once, certainly unsent (retryable), instead
        // of the pool retrying until the call's deadline and ending it as ambiguous. Retrying
        // with backoff is the top-up queue's job.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .nanoseconds(connectTimeout.nanoseconds)
        client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
    }

    public func charge(_ charge: ProviderCharge, timeout: Duration) async -> ProviderOutcome {
        guard let json = try? JSONEncoder().encode(ChargeRequestBody(charge)) else {
            // Strings and integers always encode; nothing was sent, and retrying cannot help.
            return .declined(reason: "the charge could not be encoded as JSON")
        }
        var request = HTTPClientRequest(url: "\(baseURL)/charges")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: charge.reference)
        request.body = .bytes(ByteBuffer(bytes: json))
        switch await exchange(request, timeout: timeout) {
        case .success(let reply): return reply.chargeOutcome
        case .failure(let failure): return failure.chargeOutcome
        }
    }

    public func status(of reference: String, timeout: Duration) async -> ProviderStatus {
        let segment = reference.addingPercentEncoding(withAllowedCharacters: Self.pathSegmentAllowed) ?? reference
        let request = HTTPClientRequest(url: "\(baseURL)/charges/\(segment)")
        switch await exchange(request, timeout: timeout) {
        case .success(let reply): return reply.chargeStatus
        case .failure(let failure): return failure.chargeStatus
        }
    }

    public func shutdown() async {
        // Fails only when already shut down.
        try? await client.shutdown()
    }

    /// A reference stays one path segment whatever it contains.
    private static let pathSegmentAllowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))

    /// Sends `request` and reads the whole reply within `timeout`.
    private func exchange(_ request: HTTPClientRequest, timeout: Duration) async -> Result<ProviderReply, DeliveryFailure> {
        let deadline = ContinuousClock.now + timeout
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
        } catch {
            return .failure(DeliveryFailure(error))
        }
        let body = await response.body.collect(upTo: Self.maxReplyBytes, until: deadline)
        return .success(ProviderReply(
            statusCode: Int(response.status.code),
            body: body.flatMap { ChargeReplyBody(json: Data($0.readableBytesView)) }
        ))
    }
}
