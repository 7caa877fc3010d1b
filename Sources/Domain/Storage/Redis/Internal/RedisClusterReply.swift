/// What an error reply from a cluster node asks the client to do instead of failing.
enum RedisClusterReply: Equatable {
    /// `MOVED slot host:port`: the slot lives on another node now (refresh the map).
    case moved(slot: Int, to: RedisNodeAddress)
    /// `ASK slot host:port`: this one key is being migrated; ask there once, after `ASKING`.
    case ask(to: RedisNodeAddress)
    /// `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`: the cluster is resharding or
    /// failing over; try again shortly.
    case tryAgain
    /// `NOSCRIPT`: this node has not loaded the script yet.
    case noScript

    /// The instruction in `message`, or nil for an ordinary error reply. `node` is who answered
    /// (a redirect with an empty host means the same host).
    init?(_ message: String, from node: RedisNodeAddress) {
        let words = message.split(separator: " ")
        guard let first = words.first else { return nil }
        switch first {
        case "MOVED", "ASK":
            guard words.count >= 3, let slot = Int(words[1]), let colon = words[2].lastIndex(of: ":"),
                let port = Int(words[2][words[2].index(after: colon)...])
            else { return nil }
            let host = String(words[2][..<colon])
            let address = RedisNodeAddress(host: host.isEmpty ? node.host : host, port: port)
            self = first == "MOVED" ? .moved(slot: slot, to: address) : .ask(to: address)
        case "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "LOADING":
            self = .tryAgain
        case "NOSCRIPT":
            self = .noScript
        default:
            return nil
        }
    }
}
