#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The wall clock in nanoseconds since 1970, the time base of `PresenceActivity` (shared by
/// the processes of one run on one machine, unlike the monotonic clock's per-boot origin).
enum PresenceClock {
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) &* 1_000_000_000 &+ Int64(time.tv_nsec)
    }
}
