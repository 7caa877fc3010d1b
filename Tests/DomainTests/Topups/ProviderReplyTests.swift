import AsyncHTTPClient
@testable import Domain
import Foundation
import NIOCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP-to-outcome rules of `HTTPTopupProvider`, without sockets: every status code the
/// wire API names, and which transport errors prove a request never left.
@Suite struct ProviderReplyTests {
    static let succeeded = ChargeReplyBody(status: "succeeded", providerReference: "p-1")
    static let declined = ChargeReplyBody(status: "declined", reason: "number barred")
    static let reasonOnly = ChargeReplyBody(status: nil, reason: "invalid phone number")

    @Test(arguments: [
        (200, succeeded, ProviderOutcome.succeeded(providerReference: "p-1")),
        (201, succeeded, .succeeded(providerReference: "p-1")),
        (200, declined, .declined(reason: "number barred")),
        (200, nil, .ambiguous(reason: "HTTP 200 without a readable charge status")),
        (200, ChargeReplyBody(status: "succeeded"), .ambiguous(reason: "HTTP 200 without a readable charge status")),
        (200, ChargeReplyBody(status: "pending"), .ambiguous(reason: "HTTP 200 without a readable charge status")),
        (202, succeeded, .ambiguous(reason: "HTTP 202")),
        (204, nil, .ambiguous(reason: "HTTP 204")),
        (302, nil, .ambiguous(reason: "HTTP 302")),
        (400, reasonOnly, .declined(reason: "invalid phone number")),
        (402, nil, .declined(reason: "HTTP 402")),
        (404, nil, .declined(reason: "HTTP 404")),
        (422, declined, .declined(reason: "number barred")),
        (408, nil, .ambiguous(reason: "HTTP 408")),
        (409, reasonOnly, .ambiguous(reason: "HTTP 409")),
        (429, nil, .retryable(reason: "HTTP 429")),
        (503, nil, .retryable(reason: "HTTP 503")),
        (500, nil, .ambiguous(reason: "HTTP 500")),
        (502, nil, .ambiguous(reason: "HTTP 502")),
        (504, nil, .ambiguous(reason: "HTTP 504")),
        (599, succeeded, .ambiguous(reason: "HTTP 599")),
    ] as [(Int, ChargeReplyBody?, ProviderOutcome)])
    func chargeReplies(statusCode: Int, body: ChargeReplyBody?, expected: ProviderOutcome) {
        #expect(ProviderReply(statusCode: statusCode, body: body).chargeOutcome == expected)
    }

    @Test(arguments: [
        (200, succeeded, ProviderStatus.charged(providerReference: "p-1")),
        (200, declined, .declined(reason: "number barred")),
        (200, nil, .unknown(reason: "HTTP 200 without a readable charge status")),
        (404, nil, .notFound),
        (500, nil, .unknown(reason: "HTTP 500")),
        (503, nil, .unknown(reason: "HTTP 503")),
        (400, reasonOnly, .unknown(reason: "HTTP 400")),
    ] as [(Int, ChargeReplyBody?, ProviderStatus)])
    func statusReplies(statusCode: Int, body: ChargeReplyBody?, expected: ProviderStatus) {
        #expect(ProviderReply(statusCode: statusCode, body: body).chargeStatus == expected)
    }

    @Test func bodiesDecodeFromTheWireNames() {
        let json = #"{"status": "succeeded", "provider_reference": "p-9", "extra": 1}"#
        #expect(ChargeReplyBody(json: Data(json.utf8)) == ChargeReplyBody(status: "succeeded", providerReference: "p-9"))
        #expect(ChargeReplyBody(json: Data("<html>bad gateway</html>".utf8)) == nil)
        #expect(ChargeReplyBody(json: Data()) == nil)
    }

    @Test(arguments: [
        (HTTPClientError.connectTimeout as any Error, true),
        (HTTPClientError.getConnectionFromPoolTimeout, true),
        (ChannelError.connectTimeout(.seconds(1)), true),
        (IOError(errnoCode: ECONNREFUSED, reason: "connect"), true),
        (HTTPClientError.deadlineExceeded, false),
        (HTTPClientError.readTimeout, false),
        (HTTPClientError.remoteConnectionClosed, false),
        (HTTPClientError.cancelled, false),
        (IOError(errnoCode: ECONNRESET, reason: "read"), false),
        (IOError(errnoCode: EHOSTUNREACH, reason: "read"), false),
        (CancellationError(), false),
    ] as [(any Error, Bool)])
    func onlyConnectFailuresProveNothingWasSent(error: any Error, neverSent: Bool) {
        let failure = DeliveryFailure(error)
        #expect(failure == (neverSent ? .neverSent(reason: "\(error)") : .maybeSent(reason: "\(error)")))
        #expect(failure.chargeOutcome == (neverSent ? .retryable(reason: "\(error)") : .ambiguous(reason: "\(error)")))
        #expect(failure.chargeStatus == .unknown(reason: "\(error)"))
    }
}
