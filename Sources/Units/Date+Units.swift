public import Foundation

extension Date {
    /// Milliseconds since the Unix epoch, rounded toward zero: the `*_ms` times of the wire,
    /// of Redis scores and of webhook bodies.
    public var unixMilliseconds: Int64 { Int64(timeIntervalSince1970 * 1000) }
}
