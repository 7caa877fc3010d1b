/// A message compression algorithm named in `grpc-encoding` / `grpc-accept-encoding`.
public enum MessageEncoding: String, Sendable, Hashable, CaseIterable {
    case identity
    case gzip

    /// What this implementation accepts, as sent in `grpc-accept-encoding`.
    public static let acceptHeaderValue = "identity,gzip"

    /// Picks the first algorithm of an accept list that we support, other than identity.
    public static func preferred(fromAcceptHeader value: some StringProtocol) -> MessageEncoding? {
        for token in value.split(separator: ",") {
            let name = token.trimmingCharacters(in: " ")
            if name == "gzip" { return .gzip }
        }
        return nil
    }
}

extension StringProtocol {
    func trimmingCharacters(in char: Character) -> Substring {
        var s = Substring(self)
        while s.first == char { s.removeFirst() }
        while s.last == char { s.removeLast() }
        return s
    }
}
