/// A client-given id (an event's, a user's) compared and hashed by its UTF-8 bytes.
///
/// Redis and Postgres tell ids apart by their bytes. Swift's `String` equality is canonical
/// equivalence, under which "caf\u{E9}" and "cafe\u{301}" are one string: as a set or
/// dictionary key a `String` would merge two events of a batch (one of them silently lost)
/// or two users whom storage keeps apart. Keys of ids are `ExactID`s.
public struct ExactID: Hashable, Sendable {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    public static func == (a: ExactID, b: ExactID) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }

    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension ExactID: ExpressibleByStringLiteral {
    public init(stringLiteral text: String) {
        self.init(text)
    }
}
