#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `{{name args}}` generator in a request template, parsed once and evaluated per request.
///
/// | function | value |
/// |---|---|
/// | `seq` | the request's number in the run (1, 2, ...), unique across workers |
/// | `msg` | the message's number within its stream (1 for unary calls) |
/// | `uuid` | a random version-4 UUID (new in every run, whatever the seed) |
/// | `runId` | 16 hex digits drawn once per process (one tally-load run): with `seq`, an id unique across runs that names its run |
/// | `now` | unix time in milliseconds |
/// | `randomUser` | `user-<k>`, k uniform in 1...`--users` |
/// | `randomInt A B` | an integer uniform in A...B |
/// | `randomScore` | a game score, 0...100000 |
/// | `randomBytes N` | N random bytes (base64 inside a string) |
/// | `randomString N` | N random letters and digits |
/// | `randomBool` | true or false |
/// | `pick A B C` | one of the words, uniformly |
/// | `eventType` | the event mix: app_launched 20%, game_started 30%, game_ended 30%, level_completed 15%, purchase 5% |
/// | `phone` | an E.164 number in the +1 555 fictional range, never ending in 0000...0003 |
/// | `phone P` | P (e.g. `+49151`) then 8 random digits, never ending in 0000...0003 |
/// | `answer` | a quiz answer, one of A B C D |
/// | `itemDiv M`, `itemMod M` | the element's 0-based index in its `{{repeat}}` array, divided by M or modulo M: with `--batch-size` N x M, `user-{{itemDiv M}}` and `q-{{itemMod M}}` make N users x M questions per batch |
public enum TemplateFunction: Sendable, Hashable {
    case sequence
    case messageIndex
    case uuid
    case runID
    case now
    case randomUser
    case randomInt(Int64, Int64)
    case randomScore
    case randomBytes(Int)
    case randomString(Int)
    case randomBool
    case pick([String])
    case eventType
    /// The prefix and how many random digits follow it.
    case phone(prefix: String, digits: Int)
    case answer
    /// The repeated element's index divided by (`true`) or modulo (`false`) the divisor.
    case item(divisor: Int64, quotient: Bool)
    /// Only as an array's first element: repeat the next element N times (nil: `--batch-size`).
    case repeatNext(Int?)

    public static let names = [
        "seq", "msg", "uuid", "runId", "now", "randomUser", "randomInt", "randomScore", "randomBytes", "randomString",
        "randomBool", "pick", "eventType", "phone", "answer", "itemDiv", "itemMod", "repeat",
    ]

    /// Parses the text between `{{` and `}}`.
    public init(parsing text: String) throws(LoadError) {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let name = words.first else { throw LoadError.usage("empty template {{}}") }
        let args = Array(words.dropFirst())
        func int(_ position: Int) throws(LoadError) -> Int64 {
            guard position < args.count, let value = Int64(args[position]) else {
                throw LoadError.usage("template {{\(text)}}: argument \(position + 1) must be an integer")
            }
            return value
        }
        func noArguments() throws(LoadError) {
            if !args.isEmpty { throw LoadError.usage("template {{\(text)}}: \(name) takes no arguments") }
        }
        switch name {
        case "seq": try noArguments(); self = .sequence
        case "msg": try noArguments(); self = .messageIndex
        case "uuid": try noArguments(); self = .uuid
        case "runId": try noArguments(); self = .runID
        case "now": try noArguments(); self = .now
        case "randomUser": try noArguments(); self = .randomUser
        case "randomScore": try noArguments(); self = .randomScore
        case "randomBool": try noArguments(); self = .randomBool
        case "eventType": try noArguments(); self = .eventType
        case "phone" where args.isEmpty: self = .phone(prefix: "+1555", digits: 7)
        case "phone":
            let prefix = args[0]
            guard args.count == 1, prefix.hasPrefix("+"), prefix.count >= 2, prefix.count <= 8,
                prefix.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }), !prefix.hasPrefix("+0")
            else { throw LoadError.usage("template {{\(text)}}: phone takes one prefix, + and 1 to 7 digits (e.g. +49151)") }
            self = .phone(prefix: prefix, digits: 8)
        case "answer": try noArguments(); self = .answer
        case "itemDiv", "itemMod":
            let divisor = try int(0)
            guard args.count == 1, divisor >= 1 else { throw LoadError.usage("template {{\(text)}}: \(name) takes one divisor >= 1") }
            self = .item(divisor: divisor, quotient: name == "itemDiv")
        case "randomInt":
            let low = try int(0)
            let high = try int(1)
            guard low <= high else { throw LoadError.usage("template {{\(text)}}: the range is empty") }
            self = .randomInt(low, high)
        case "randomBytes", "randomString":
            let count = try int(0)
            guard (0...1_048_576).contains(count) else { throw LoadError.usage("template {{\(text)}}: length must be 0...1048576") }
            self = name == "randomBytes" ? .randomBytes(Int(count)) : .randomString(Int(count))
        case "pick":
            guard !args.isEmpty else { throw LoadError.usage("template {{\(text)}}: pick needs at least one word") }
            self = .pick(args)
        case "repeat":
            if args.isEmpty {
                self = .repeatNext(nil)
            } else {
                let count = try int(0)
                guard (0...100_000).contains(count) else { throw LoadError.usage("template {{\(text)}}: count must be 0...100000") }
                self = .repeatNext(Int(count))
            }
        default:
            throw LoadError.usage("unknown template function \"\(name)\" in {{\(text)}}; known: \(Self.names.joined(separator: ", "))")
        }
    }

    /// A new value for this request.
    public func evaluate(_ context: inout GeneratorContext) -> TemplateValue {
        switch self {
        case .sequence: return .int(Int64(context.sequence))
        case .messageIndex: return .int(Int64(context.messageIndex))
        case .uuid: return .string(Self.uuid(&context.random))
        case .runID: return .string(Self.runIdentifier)
        case .now: return .int(Self.unixMilliseconds())
        case .randomUser: return .string("user-\(Int.random(in: 1...context.users, using: &context.random))")
        case .randomInt(let low, let high): return .int(Int64.random(in: low...high, using: &context.random))
        case .randomScore: return .int(Int64.random(in: 0...100_000, using: &context.random))
        case .randomBytes(let count):
            var bytes = [UInt8](repeating: 0, count: count)
            for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &context.random) }
            return .bytes(bytes)
        case .randomString(let count):
            let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)
            var bytes = [UInt8](repeating: 0, count: count)
            for index in bytes.indices { bytes[index] = alphabet[Int.random(in: 0..<alphabet.count, using: &context.random)] }
            return .string(String(decoding: bytes, as: UTF8.self))
        case .randomBool: return .bool(Bool.random(using: &context.random))
        case .pick(let words): return .string(words[Int.random(in: 0..<words.count, using: &context.random)])
        case .eventType:
            let roll = Int.random(in: 0..<100, using: &context.random)
            let type =
                switch roll {
                case ..<20: "app_launched"
                case ..<50: "game_started"
                case ..<80: "game_ended"
                case ..<95: "level_completed"
                default: "purchase"
                }
            return .string(type)
        case .phone(let prefix, let digits): return .string(Self.phone(prefix: prefix, digits: digits, &context.random))
        case .answer: return .string(["A", "B", "C", "D"][Int.random(in: 0..<4, using: &context.random)])
        case .item(let divisor, let quotient):
            let index = Int64(context.itemIndex)
            return .int(quotient ? index / divisor : index % divisor)
        case .repeatNext: return .int(0)
        }
    }

    /// Drawn once per process from the system's generator: `--seed` makes a run's data
    /// reproducible, but ids must not repeat across runs (an event id seen by an earlier run
    /// is a duplicate to the server, and the run would measure dedupe instead of ingest).
    private static let runSalt = (high: UInt64.random(in: .min ... .max), low: UInt64.random(in: .min ... .max))

    /// The run's id for `{{runId}}`, from the same per-process salt as `{{uuid}}`.
    private static let runIdentifier: String = {
        let hex = String(runSalt.high ^ runSalt.low, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }()

    /// Never ends in 0000 to 0003: the sandbox top-up provider declines, times out or refuses
    /// those on purpose, and random load should measure the ordinary path.
    private static func phone(prefix: String, digits: Int, _ random: inout FastRandom) -> String {
        var lowest = 1  // no leading zero after the prefix
        for _ in 1..<digits { lowest *= 10 }
        var number = Int.random(in: lowest..<(lowest * 10), using: &random)
        if number % 10_000 <= 3 { number += 4 }
        return prefix + String(number)
    }

    private static func uuid(_ random: inout FastRandom) -> String {
        var high = random.next() ^ runSalt.high
        var low = random.next() ^ runSalt.low
        high = (high & ~0xF000) | 0x4000  // version 4
        low = (low & ~(UInt64(0xC) << 60)) | (UInt64(0x8) << 60)  // RFC 4122 variant
        // Written digit by digit into the string's own storage: built from string pieces,
        // this was 30% of the load tool's CPU when every event of a batch takes a fresh id.
        return String(unsafeUninitializedCapacity: 36) { text in
            let digits: StaticString = "0123456789abcdef"
            var index = 0
            func put(_ value: UInt64, _ count: Int) {
                for shift in stride(from: (count - 1) * 4, through: 0, by: -4) {
                    text[index] = digits.utf8Start[Int((value >> UInt64(shift)) & 0xF)]
                    index += 1
                }
            }
            func dash() {
                text[index] = UInt8(ascii: "-")
                index += 1
            }
            put(high >> 32, 8)
            dash()
            put(high >> 16, 4)
            dash()
            put(high, 4)
            dash()
            put(low >> 48, 4)
            dash()
            put(low, 12)
            return index
        }
    }

    private static func unixMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
