/// The Redis keys of one board (see `LeaderboardScripts`), all under one hash tag.
struct BoardKeys {
    let z: RedisArgument
    let m: RedisArgument
    let ready: RedisArgument
    let building: RedisArgument
    let nextZ: RedisArgument
    let nextM: RedisArgument
    let tag: String

    init(_ board: BoardID, namespace: String = "lb") {
        tag = "{\(namespace):\(board)}"
        z = RedisArgument(tag + ":z")
        m = RedisArgument(tag + ":m")
        ready = RedisArgument(tag + ":ready")
        building = RedisArgument(tag + ":building")
        nextZ = RedisArgument(tag + ":z:next")
        nextM = RedisArgument(tag + ":m:next")
    }

    func submission(_ id: String) -> RedisArgument { RedisArgument(tag + ":submission:" + id) }

    /// The pub/sub channel announcing changes of the board to every instance.
    static func changes(_ board: BoardID, namespace: String = "lb") -> String { "\(namespace):changed:\(board)" }
}
