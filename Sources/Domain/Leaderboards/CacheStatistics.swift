import Storage
/// A cache's size and how often it answered, for admin stats.
public struct CacheStatistics: Sendable, Hashable {
    public var entries: Int
    /// Lookups answered from the cache since start.
    public var hits: Int
    /// Lookups that had to go to the source (absent, expired or retired entries).
    public var misses: Int

    public init(entries: Int, hits: Int, misses: Int) {
        self.entries = entries
        self.hits = hits
        self.misses = misses
    }
}
