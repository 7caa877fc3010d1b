/// One Redis command: its name and arguments as binary-safe strings.
///
/// Arguments are kept in one contiguous buffer (plus their lengths) so encoding with hiredis'
/// `redisFormatCommandArgv` needs no per-argument allocation.
public struct RedisCommand: Sendable, CustomStringConvertible {
    var storage: [UInt8]
    var lengths: [Int]

    public init(_ name: String, _ arguments: RedisArgument...) {
        self.init(name, arguments)
    }

    public init(_ name: String, _ arguments: [RedisArgument]) {
        storage = Array(name.utf8)
        lengths = [storage.count]
        lengths.reserveCapacity(arguments.count + 1)
        for argument in arguments {
            storage.append(contentsOf: argument.bytes)
            lengths.append(argument.bytes.count)
        }
    }

    /// `EVALSHA sha numkeys keys... arguments...`, built in place (no concatenated argument
    /// arrays: this runs once per script call).
    init(evalsha sha: String, keys: [RedisArgument], arguments: [RedisArgument]) {
        let count = String(keys.count)
        var size = 7 + sha.utf8.count + count.utf8.count
        for argument in keys { size += argument.bytes.count }
        for argument in arguments { size += argument.bytes.count }
        storage = []
        storage.reserveCapacity(size)
        lengths = []
        lengths.reserveCapacity(3 + keys.count + arguments.count)
        storage.append(contentsOf: "EVALSHA".utf8)
        lengths.append(7)
        storage.append(contentsOf: sha.utf8)
        lengths.append(sha.utf8.count)
        storage.append(contentsOf: count.utf8)
        lengths.append(count.utf8.count)
        for argument in keys {
            storage.append(contentsOf: argument.bytes)
            lengths.append(argument.bytes.count)
        }
        for argument in arguments {
            storage.append(contentsOf: argument.bytes)
            lengths.append(argument.bytes.count)
        }
    }

    /// The command's name, e.g. `EVALSHA` (for logs and errors; never the arguments).
    public var name: String { String(decoding: storage[0..<lengths[0]], as: UTF8.self) }

    public var description: String { name }
}

/// An argument of a Redis command: text, a number or raw bytes.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public var bytes: [UInt8]

    public init(_ text: String) { bytes = Array(text.utf8) }
    public init(_ value: Int) { bytes = Array(String(value).utf8) }
    public init(_ value: Int64) { bytes = Array(String(value).utf8) }
    /// Doubles as Redis reads them back exactly (shortest round-trip form).
    public init(_ value: Double) { bytes = Array("\(value)".utf8) }
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
}
