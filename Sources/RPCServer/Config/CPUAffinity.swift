#if canImport(Glibc)
import Glibc
#endif

/// CPUs this process may run on, from its affinity mask.
///
/// `System.coreCount` ignores `taskset`, so a server pinned to one core would otherwise start
/// one event loop per machine core and make its threads fight over that core.
enum CPUAffinity {
    static var availableCPUs: Int {
        #if os(Linux)
        var mask = [UInt64](repeating: 0, count: 16)
        let result = mask.withUnsafeMutableBytes { bytes in
            tally_sched_getaffinity(0, bytes.count, bytes.baseAddress!)
        }
        if result == 0 {
            let count = mask.reduce(0) { $0 + $1.nonzeroBitCount }
            if count > 0 { return count }
        }
        #endif
        return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }
}

#if os(Linux)
// Glibc's Swift module does not expose sched_getaffinity (it is behind _GNU_SOURCE).
@_silgen_name("sched_getaffinity")
private func tally_sched_getaffinity(_ pid: pid_t, _ size: Int, _ mask: UnsafeMutableRawPointer) -> Int32
#endif
