import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1
import NIOPosix

/// A provider reached over HTTP with JSON (AsyncHTTPClient, connections pooled on Tally's loops).
///
/// The wire API asked of a partner's provider:
/// - `POST {base}/charges` with `{"reference", "phone_number", "amount_minor_units", "currency",
///   "carrier", "attempt"}` and an `Idempotency-Key: <reference>` header. `200`/`201` with
///   `{"status":"succeeded","provider_reference":...}` charged; `{"status":"declined","reason":...}`
///   or a 4xx (but 408, 409, 429) declined for good; `429`/`503` refused before processing;
///   `408`, `409`, other 5xx or an unreadable body: maybe charged.
/// - `GET {base}/charges/{reference}`: `200` with the same body, or `404` never charged.
///
/// "Never sent" (connection refused, connect timeout) is retryable; a timeout or a reset after
/// the request went out is ambiguous, and Tally asks the status before charging again.
public final class HTTPTopupProvider: TopupProvider {
    public let name = "http"
    private let baseURL: String
    private let client: HTTPClient
    private static let maxBody = 64 * 1024

    public init(baseURL: String, eventLoopGroup: any EventLoopGroup) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(2)
        self.client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
    }

    public func charge(_ charge: ProviderCharge, timeout: Duration) async -> ProviderOutcome {
        var request = HTTPClientRequest(url: "\(baseURL)/charges")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: charge.reference)
        let body = ChargeRequestBody(
            reference: charge.reference, phone_number: charge.phoneNumber, amount_minor_units: charge.amountMinorUnits,
            currency: charge.currency, carrier: charge.carrier, attempt: charge.attempt)
        guard let encoded = try? JSONEncoder().encode(body) else { return .retryable(reason: "request not encodable") }
        request.body = .bytes(ByteBuffer(bytes: encoded))
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await client.execute(request, timeout: TimeAmount.nanoseconds(timeout.nanoseconds))
            bytes = try await response.body.collect(upTo: Self.maxBody)
        } catch {
            return Self.isNeverSent(error) ? .retryable(reason: "not sent: \(error)") : .ambiguous(reason: "\(error)")
        }
        let answer = try? JSONDecoder().decode(ChargeAnswerBody.self, from: Data(bytes.readableBytesView))
        switch response.status.code {
        case 200, 201:
            switch (answer?.status, answer?.provider_reference) {
            case ("succeeded"?, let reference?): return .succeeded(providerReference: reference)
            case ("declined"?, _): return .declined(reason: answer?.reason ?? "declined")
            default: return .ambiguous(reason: "HTTP \(response.status.code) with an unreadable body")
            }
        case 429, 503:
            return .retryable(reason: "HTTP \(response.status.code)")
        case 408, 409, 500...599:
            return .ambiguous(reason: "HTTP \(response.status.code)")
        case 400...499:
            return .declined(reason: answer?.reason ?? "HTTP \(response.status.code)")
        default:
            return .ambiguous(reason: "HTTP \(response.status.code)")
        }
    }

    public func status(of reference: String, timeout: Duration) async -> ProviderStatus {
        let escaped = reference.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? reference
        let request = HTTPClientRequest(url: "\(baseURL)/charges/\(escaped)")
        do {
            let response = try await client.execute(request, timeout: TimeAmount.nanoseconds(timeout.nanoseconds))
            let bytes = try await response.body.collect(upTo: Self.maxBody)
            if response.status == .notFound { return .notFound }
            guard response.status == .ok, let answer = try? JSONDecoder().decode(ChargeAnswerBody.self, from: Data(bytes.readableBytesView)) else {
                return .unknown(reason: "HTTP \(response.status.code)")
            }
            switch (answer.status, answer.provider_reference) {
            case ("succeeded", let providerReference?): return .charged(providerReference: providerReference)
            case ("declined", _): return .declined(reason: answer.reason ?? "declined")
            default: return .unknown(reason: "status \(answer.status)")
            }
        } catch {
            return .unknown(reason: "\(error)")
        }
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Errors raised before the request could reach the provider.
    static func isNeverSent(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .connectTimeout || error == .getConnectionFromPoolTimeout
        }
        if error is NIOConnectionError { return true }
        if let error = error as? IOError { return error.errnoCode == ECONNREFUSED }
        return false
    }
}
