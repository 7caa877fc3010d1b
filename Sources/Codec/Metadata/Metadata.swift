/// gRPC custom metadata: ordered key/value pairs, keys lower-case ASCII.
///
/// Keys ending in `-bin` carry binary values, base64-encoded on the wire (padding optional on
/// receipt, as gRPC allows); all other values are printable ASCII strings.
public struct Metadata: Hashable, Sendable, Sequence {
    public enum Value: Hashable, Sendable {
        case string(String)
        case binary([UInt8])
    }

    public struct Entry: Hashable, Sendable {
        public var key: String
        public var value: Value
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// Metadata with the given ASCII pairs, in order.
    public init(_ pairs: KeyValuePairs<String, String>) {
        for (key, value) in pairs { add(key, value) }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    public func makeIterator() -> IndexingIterator<[Entry]> { entries.makeIterator() }

    /// Appends an ASCII value (keys are lower-cased, as HTTP/2 requires).
    public mutating func add(_ key: String, _ value: String) {
        entries.append(Entry(key: key.lowercased(), value: .string(value)))
    }

    /// Appends a binary value; the key must end in `-bin`.
    public mutating func add(_ key: String, binary value: [UInt8]) {
        precondition(key.hasSuffix("-bin"), "binary metadata keys end in -bin")
        entries.append(Entry(key: key.lowercased(), value: .binary(value)))
    }

    /// Appends an entry as is.
    public mutating func append(_ entry: Entry) {
        entries.append(entry)
    }

    /// Appends every entry of `other`, in order.
    public mutating func append(contentsOf other: Metadata) {
        entries.append(contentsOf: other.entries)
    }

    /// The first ASCII value for `key`.
    public subscript(key: String) -> String? {
        for entry in entries where entry.key == key {
            if case .string(let value) = entry.value { return value }
        }
        return nil
    }

    /// The first binary value for `key`.
    public func binary(_ key: String) -> [UInt8]? {
        for entry in entries where entry.key == key {
            if case .binary(let value) = entry.value { return value }
        }
        return nil
    }

    /// All values for `key`, in order.
    public func values(_ key: String) -> [Value] {
        entries.filter { $0.key == key }.map(\.value)
    }

    public mutating func remove(_ key: String) {
        entries.removeAll { $0.key == key }
    }

    /// Adds a header as received on the wire, decoding `-bin` values.
    ///
    /// Returns false when a `-bin` value is not valid base64 (the caller rejects the call).
    public mutating func addWireHeader(name: String, value: String) -> Bool {
        if name.hasSuffix("-bin") {
            // Several binary values may be joined by commas in one header field.
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                guard let decoded = Base64.decode(part.trimmingSpaces) else { return false }
                entries.append(Entry(key: name, value: .binary(decoded)))
            }
            return true
        }
        entries.append(Entry(key: name, value: .string(value)))
        return true
    }

    /// The header fields to send: `-bin` values base64-encoded without padding.
    public var wireHeaders: [(name: String, value: String)] {
        entries.map { entry in
            switch entry.value {
            case .string(let value): (entry.key, value)
            case .binary(let bytes): (entry.key, Base64.encode(bytes, padding: false))
            }
        }
    }

    /// Whether `name` is reserved for the transport (pseudo-headers, HTTP/2 and gRPC headers)
    /// and therefore never part of an application's custom metadata.
    public static func isReserved(_ name: String) -> Bool {
        if name.hasPrefix(":") || name.hasPrefix("grpc-") { return true }
        switch name {
        case "content-type", "te", "user-agent", "content-length", "connection", "host",
            "accept-encoding", "transfer-encoding", "keep-alive", "upgrade":
            return true
        default:
            return false
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
