import Crypto

/// The text of a partner's API key: `tly_live_`, 43 random base62 characters (256 bits) and a
/// 6-character checksum, e.g. `tly_live_4Qy...k2Z9a1B`.
///
/// The prefix makes a leaked key recognisable to secret scanners; the checksum lets the auth
/// interceptor refuse a mistyped or truncated key without a database lookup. Only
/// `hash` (SHA-256) is ever stored: a key of 256 random bits needs no slow password hash.
public struct ApiKeySecret: Sendable, Hashable {
    public static let prefix = "tly_live_"
    static let randomLength = 43
    static let checksumLength = 6
    static let length = prefix.utf8.count + randomLength + checksumLength
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// The whole key, as the partner sends it.
    public let text: String

    /// A new random key (the system's CSPRNG).
    public static func generate() -> ApiKeySecret {
        var generator = SystemRandomNumberGenerator()
        var body = Array(prefix.utf8)
        for _ in 0..<randomLength {
            body.append(alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))])
        }
        return ApiKeySecret(validated: String(decoding: body + checksum(of: body), as: UTF8.self))
    }

    /// Parses a presented key; nil when its prefix, length, alphabet or checksum is wrong.
    public init?(parsing text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard bytes.count == Self.length, bytes.starts(with: Self.prefix.utf8),
              bytes.dropFirst(Self.prefix.utf8.count).allSatisfy(Self.isBase62) else { return nil }
        let body = Array(bytes.prefix(Self.length - Self.checksumLength))
        guard Self.checksum(of: body) == Array(bytes.suffix(Self.checksumLength)) else { return nil }
        self.text = String(text)
    }

    private init(validated text: String) {
        self.text = text
    }

    /// SHA-256 of the key: what `api_keys.key_hash` holds and lookups use.
    public var hash: [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    /// The first characters, to recognise a key in lists without revealing it.
    public var displayPrefix: String { String(text.prefix(Self.prefix.count + 4)) }

    /// Six base62 digits of the first 32 bits of SHA-256 of the prefix and random part.
    private static func checksum(of body: [UInt8]) -> [UInt8] {
        var value = SHA256.hash(data: body).prefix(4).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        var digits = [UInt8](repeating: alphabet[0], count: checksumLength)
        for index in stride(from: checksumLength - 1, through: 0, by: -1) {
            digits[index] = alphabet[Int(value % 62)]
            value /= 62
        }
        return digits
    }

    private static func isBase62(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }
}
