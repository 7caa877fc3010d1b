import Storage
/// An improvement of a board as announced on its pub/sub channel: the user's new best (on a
/// latest-score board: their new entry, better or worse) and the board's version after it.
///
/// The submit scripts bump the board's version (`:v`) with every change they merge, in
/// the same atomic step, so a mirror that has applied every version up to Redis' own holds
/// exactly the sorted set; a version it never receives (an announcement lost with a
/// subscriber's connection, or a writer that died between the merge and the announcement)
/// shows as a gap, and the mirror is loaded again.
///
/// On the wire: a format byte (1), the board's length as 2 bytes and its name (`BoardID`'s
/// text), then per change the version, score and time as 8-byte
/// big-endian integers, the user id's length as 2 bytes and its UTF-8 bytes. `Watch` only
/// needs to know that the board changed and ignores the payload.
struct BoardChange: Sendable, Hashable {
    var version: Int64
    var userID: String
    var score: Int64
    var achievedAtMs: Int64

    static let format: UInt8 = 1

    static func encode(_ changes: [BoardChange], board: BoardID) -> [UInt8] {
        let name = board.description.utf8
        var bytes: [UInt8] = [format]
        bytes.reserveCapacity(3 + name.count + changes.reduce(0) { $0 + 26 + $1.userID.utf8.count })
        appendLength(name.count, to: &bytes)
        bytes.append(contentsOf: name)
        for change in changes {
            append(change.version, to: &bytes)
            append(change.score, to: &bytes)
            append(change.achievedAtMs, to: &bytes)
            let user = change.userID.utf8.prefix(Int(UInt16.max))  // ids are at most 128 bytes
            appendLength(user.count, to: &bytes)
            bytes.append(contentsOf: user)
        }
        return bytes
    }

    /// nil for a payload of another format (an older instance's announcement) or a truncated one.
    static func decode(_ bytes: [UInt8]) -> (board: BoardID, changes: [BoardChange])? {
        guard bytes.first == format else { return nil }
        var changes: [BoardChange] = []
        var index = 1
        func text() -> String? {
            guard index + 2 <= bytes.count else { return nil }
            let length = Int(bytes[index]) << 8 | Int(bytes[index + 1])
            index += 2
            guard index + length <= bytes.count else { return nil }
            defer { index += length }
            return String(decoding: bytes[index..<(index + length)], as: UTF8.self)
        }
        func integer() -> Int64? {
            guard index + 8 <= bytes.count else { return nil }
            var value: UInt64 = 0
            for byte in bytes[index..<(index + 8)] { value = value << 8 | UInt64(byte) }
            index += 8
            return Int64(bitPattern: value)
        }
        guard let name = text(), let board = try? BoardID(parsing: name) else { return nil }
        while index < bytes.count {
            guard let version = integer(), let score = integer(), let time = integer(), let user = text() else { return nil }
            changes.append(BoardChange(version: version, userID: user, score: score, achievedAtMs: time))
        }
        return (board, changes)
    }

    private static func appendLength(_ length: Int, to bytes: inout [UInt8]) {
        bytes.append(UInt8(truncatingIfNeeded: length >> 8))
        bytes.append(UInt8(truncatingIfNeeded: length))
    }

    private static func append(_ value: Int64, to bytes: inout [UInt8]) {
        let bits = UInt64(bitPattern: value)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }
}
