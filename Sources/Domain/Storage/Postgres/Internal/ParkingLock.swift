#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// A pthread mutex with one condition variable, guarding `State`: where the executor's idle
/// threads park until work arrives.
///
/// `Synchronization.Mutex` has no condition to wait on, and NIO's `ConditionLock` wakes every
/// waiter on each unlock; a queue of jobs wants exactly one sleeper woken per job.
///
/// @unchecked Sendable: `state` is only read or written between `lock()` and `unlock()`.
final class ParkingLock<State>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Guarded by the lock.
    var state: State

    init(_ state: State) {
        self.state = state
        mutex.initialize(to: pthread_mutex_t())
        condition.initialize(to: pthread_cond_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
        precondition(pthread_cond_init(condition, nil) == 0, "pthread_cond_init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }

    func unlock() { pthread_mutex_unlock(mutex) }

    /// Releases the lock until signalled (or spuriously woken), then holds it again; callers
    /// re-check their condition in a loop.
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Wakes one parked thread.
    func signal() { pthread_cond_signal(condition) }

    /// Wakes every parked thread.
    func broadcast() { pthread_cond_broadcast(condition) }
}
