extension RedisCommand {
    /// Argument `index` (0 is the command's name), or nil past the end.
    func argument(_ index: Int) -> ArraySlice<UInt8>? {
        guard index < lengths.count else { return nil }
        var start = 0
        for length in lengths[..<index] { start += length }
        return storage[start..<(start + lengths[index])]
    }

    /// The key that decides which cluster node runs the command: the first of a script's
    /// `KEYS`, the first argument of a key command, nil for commands any node answers.
    ///
    /// Every command and script Tally sends has its key first (or none); multi-key ones keep
    /// their keys in one slot with a hash tag, so the first key names the node of all.
    var routingKey: ArraySlice<UInt8>? {
        guard let name = argument(0) else { return nil }
        switch String(decoding: name, as: UTF8.self).uppercased() {
        case "EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO":
            guard let count = argument(2), let keys = Int(String(decoding: count, as: UTF8.self)), keys > 0 else { return nil }
            return argument(3)
        case "PING", "SCRIPT", "PUBLISH", "INFO", "CLUSTER", "WAIT", "AUTH", "SELECT", "ASKING", "READONLY",
            "FLUSHALL", "FLUSHDB", "DBSIZE", "CONFIG", "TIME", "SUBSCRIBE", "UNSUBSCRIBE":
            return nil
        default:
            return argument(1)
        }
    }
}

extension RedisCommand {
    /// The same `EVALSHA` with another SHA1 (a script loaded after the command was built).
    func withSHA(_ sha: String) -> RedisCommand {
        guard lengths.count > 1 else { return self }
        var copy = self
        let start = lengths[0]
        copy.storage.replaceSubrange(start..<(start + lengths[1]), with: Array(sha.utf8))
        copy.lengths[1] = sha.utf8.count
        return copy
    }
}
