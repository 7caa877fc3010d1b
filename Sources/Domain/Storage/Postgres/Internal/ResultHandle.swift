internal import CLibPQ

/// Sole owner of one `PGresult`, cleared when the last `PostgresRows` holding it goes.
///
/// @unchecked Sendable: a PGresult is immutable once returned and libpq documents it as safe to
/// read from any thread.
final class ResultHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { PQclear(pointer) }
}
