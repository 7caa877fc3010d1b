public import Codec

/// Which leaderboard: the global high scores, a tournament's, or a quiz's.
///
/// On the wire a board is `global`, `tournament:<id>` or `quiz:<id>` (leaderboard.proto).
public enum BoardID: Sendable, Hashable, CustomStringConvertible {
    case global
    case tournament(String)
    case quiz(String)

    public init(parsing text: String, field: String = "board_id") throws(RPCError) {
        if text == "global" {
            self = .global
            return
        }
        guard let colon = text.firstIndex(of: ":") else {
            throw RPCError(.invalidArgument, "\(field): \"\(text.prefix(64))\" is not a board; use global, tournament:<id> or quiz:<id>")
        }
        let kind = text[..<colon]
        let id = String(text[text.index(after: colon)...])
        guard !id.isEmpty, id.utf8.count <= 64, !id.contains(where: { $0 == "{" || $0 == "}" || $0.isWhitespace }) else {
            throw RPCError(.invalidArgument, "\(field): the id after \"\(kind):\" must be 1..64 characters without spaces or braces")
        }
        switch kind {
        case "tournament": self = .tournament(id)
        case "quiz": self = .quiz(id)
        default:
            throw RPCError(.invalidArgument, "\(field): unknown board kind \"\(kind.prefix(32))\"; use global, tournament:<id> or quiz:<id>")
        }
    }

    public var description: String {
        switch self {
        case .global: "global"
        case .tournament(let id): "tournament:\(id)"
        case .quiz(let id): "quiz:\(id)"
        }
    }
}
