public import Foundation

/// One numbered SQL file, e.g. `0001_events.sql`: version 1, name "events".
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Fingerprint of the SQL text (FNV-1a, 64-bit, hex): detects a migration edited after it
    /// was applied somewhere. It is not a defence against tampering.
    public var checksum: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Migrations from numbered SQL files (`NNNN_name.sql`), in version order.
    public static func load(_ files: [URL]) throws(MigrationError) -> [Migration] {
        var migrations: [Migration] = []
        for file in files where file.pathExtension == "sql" {
            let base = file.deletingPathExtension().lastPathComponent
            guard let underscore = base.firstIndex(of: "_"), let version = Int(base[..<underscore]), version > 0 else {
                throw MigrationError("migration file \(file.lastPathComponent) must be named NNNN_name.sql")
            }
            let sql: String
            do {
                sql = try String(contentsOf: file, encoding: .utf8)
            } catch {
                throw MigrationError("cannot read \(file.lastPathComponent): \(error)")
            }
            migrations.append(Migration(version: version, name: String(base[base.index(after: underscore)...]), sql: sql))
        }
        return try ordered(migrations)
    }

    /// Sorted by version; two files with one version are an error.
    static func ordered(_ migrations: [Migration]) throws(MigrationError) -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw MigrationError("two migrations have version \(next.version): \(previous.name) and \(next.name)")
        }
        return sorted
    }
}

/// A migration could not be loaded or applied, or an applied one was changed.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "migration error: \(message)" }
}
