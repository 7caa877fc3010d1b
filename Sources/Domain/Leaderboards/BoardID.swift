import Storage
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
        guard !id.isEmpty, id.utf8.count <= 64, !Self.hasBraceOrSpace(id) else {
            throw RPCError(.invalidArgument, "\(field): the id after \"\(kind):\" must be 1..64 characters without spaces or braces")
        }
        switch kind {
        case "tournament": self = .tournament(id)
        case "quiz": self = .quiz(id)
        default:
            throw RPCError(.invalidArgument, "\(field): unknown board kind \"\(kind.prefix(32))\"; use global, tournament:<id> or quiz:<id>")
        }
    }

    /// Whether an id holds a brace (it would break the Redis hash tag) or white space.
    /// Parsed on every request: ASCII ids are checked byte by byte, others by `Character`.
    static func hasBraceOrSpace(_ id: String) -> Bool {
        var isASCII = true
        for byte in id.utf8 {
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: " "), 0x09...0x0D: return true
            case 0x80...: isASCII = false
            default: continue
            }
        }
        return isASCII ? false : id.contains(where: { $0 == "{" || $0 == "}" || $0.isWhitespace })
    }

    /// By the id's bytes, as the board's Redis keys and Postgres rows tell boards apart (see
    /// `ExactID`).
    public static func == (a: BoardID, b: BoardID) -> Bool {
        switch (a, b) {
        case (.global, .global): true
        case (.tournament(let x), .tournament(let y)), (.quiz(let x), .quiz(let y)): ExactID(x) == ExactID(y)
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .global: hasher.combine(0)
        case .tournament(let id): hasher.combine(1); hasher.combine(ExactID(id))
        case .quiz(let id): hasher.combine(2); hasher.combine(ExactID(id))
        }
    }

    /// Whether the board holds each user's latest score (replaced, by revision) rather than
    /// their best (max-merged): quiz boards, whose scores go down when an answer is replaced.
    public var keepsLatest: Bool {
        if case .quiz = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .global: "global"
        case .tournament(let id): "tournament:\(id)"
        case .quiz(let id): "quiz:\(id)"
        }
    }
}
