/// Why a load run could not start or was judged failed.
public enum LoadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Bad flags, templates or scenario files; the message names the culprit.
    case usage(String)
    /// The target could not be reached (connect, TLS or HTTP/2 setup failed).
    case unreachable(String)

    public var description: String {
        switch self {
        case .usage(let message): message
        case .unreachable(let message): message
        }
    }
}
