import Storage
/// The Redis keys of one board (see `LeaderboardScripts`), all under one hash tag.
///
/// Built per request, so only the hash tag is built up front, straight as bytes; each key is
/// one allocation when asked for (`Rank` needs three of them).
struct BoardKeys {
    /// `{<namespace>:<board>}`.
    let tag: [UInt8]

    init(_ board: BoardID, namespace: String = "lb") {
        var tag: [UInt8] = []
        tag.reserveCapacity(namespace.utf8.count + 80)
        tag.append(UInt8(ascii: "{"))
        tag.append(contentsOf: namespace.utf8)
        tag.append(UInt8(ascii: ":"))
        switch board {
        case .global:
            tag.append(contentsOf: "global".utf8)
        case .tournament(let id):
            tag.append(contentsOf: "tournament:".utf8)
            tag.append(contentsOf: id.utf8)
        case .quiz(let id):
            tag.append(contentsOf: "quiz:".utf8)
            tag.append(contentsOf: id.utf8)
        }
        tag.append(UInt8(ascii: "}"))
        self.tag = tag
    }

    var z: RedisArgument { key(":z") }
    var m: RedisArgument { key(":m") }
    var ready: RedisArgument { key(":ready") }
    var building: RedisArgument { key(":building") }
    var nextZ: RedisArgument { key(":z:next") }
    var nextM: RedisArgument { key(":m:next") }
    var version: RedisArgument { key(":v") }
    /// Latest-score boards only: user id -> revision of the entry in :z (and its rebuild copy).
    var revisions: RedisArgument { key(":r") }
    var nextRevisions: RedisArgument { key(":r:next") }

    func submission(_ id: String) -> RedisArgument { key(":submission:", id) }

    /// The pub/sub channel announcing changes of the board to every instance.
    static func changes(_ board: BoardID, namespace: String = "lb") -> String { "\(namespace):changed:\(board)" }

    private func key(_ suffix: StaticString, _ rest: String = "") -> RedisArgument {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(tag.count + suffix.utf8CodeUnitCount + rest.utf8.count)
        bytes.append(contentsOf: tag)
        bytes.append(contentsOf: UnsafeBufferPointer(start: suffix.utf8Start, count: suffix.utf8CodeUnitCount))
        bytes.append(contentsOf: rest.utf8)
        return RedisArgument(bytes: bytes)
    }
}
