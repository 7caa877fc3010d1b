import AsyncHTTPClient
import NIOCore
import NIOPosix
#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// An HTTP exchange that brought no answer, judged by whether the provider can have received it.
///
/// Only errors that happen before a connection exists prove the request was never sent:
/// connection refused, DNS failures, connect timeouts. Everything else (read timeouts, the
/// deadline passing, resets and closes) can strike after the provider processed the request,
/// and so does any error not recognised here, because wrongly calling a charge "never sent"
/// could charge twice while wrongly calling it "maybe sent" only costs a status question.
enum DeliveryFailure: Error, Hashable {
    /// No connection was made: the provider cannot have processed the request.
    case neverSent(reason: String)
    /// The request may have reached the provider.
    case maybeSent(reason: String)

    init(_ error: any Error) {
        let reason = String(describing: error)
        self = Self.provesNothingWasSent(error) ? .neverSent(reason: reason) : .maybeSent(reason: reason)
    }

    var chargeOutcome: ProviderOutcome {
        switch self {
        case .neverSent(let reason): .retryable(reason: reason)
        case .maybeSent(let reason): .ambiguous(reason: reason)
        }
    }

    var chargeStatus: ProviderStatus {
        switch self {
        case .neverSent(let reason), .maybeSent(let reason): .unknown(reason: reason)
        }
    }

    private static func provesNothingWasSent(_ error: any Error) -> Bool {
        switch error {
        // NIO's connect by host name: DNS failed or every address refused or timed out.
        case is NIOConnectionError:
            return true
        // Connect by IP address: the socket's own error. Only ECONNREFUSED is certain: the
        // unreachable errnos can also end a connection that already carried the request.
        case let error as IOError:
            return error.errnoCode == ECONNREFUSED
        case ChannelError.connectTimeout:
            return true
        case let error as HTTPClientError:
            // The pool reports why it never had a connection for the request.
            return [
                .connectTimeout, .getConnectionFromPoolTimeout, .tlsHandshakeTimeout,
                .socksHandshakeTimeout, .httpProxyHandshakeTimeout, .alreadyShutdown,
                .invalidURL, .emptyHost, .emptyScheme,
            ].contains(error)
        default:
            return false
        }
    }
}
