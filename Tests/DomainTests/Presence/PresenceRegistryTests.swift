import Codec
import Foundation
import Storage
import TestSupport
import Testing

@testable import Domain

/// Devices and users' presence in the run's Redis: the scripts' rules.
@Suite("Presence registry")
struct PresenceRegistryTests {
    static func withRegistry(_ body: (PresenceRegistry) async throws -> Void) async throws {
        try await TestRedis.withClient { redis in
            try await body(PresenceRegistry(redis: redis, namespace: "presence-test-\(UUID().uuidString.prefix(8))"))
        }
    }

    static func touch(_ registry: PresenceRegistry, _ user: String, _ device: String, _ status: Tally_V1_PresenceStatus,
                      activity: String = "", session: String = "s", ttlMs: Int64 = 60_000, maxDevices: Int = 5,
                      takeover: Bool = true) async throws -> PresenceRegistry.Touch {
        let now = PresenceRegistry.nowMs()
        return try await registry.touch(user: user, device: device, session: session + device, status: status, activity: activity,
                                        deadlineMs: now + ttlMs, nowMs: now, maxDevices: maxDevices, takeover: takeover)
    }

    static func status(_ registry: PresenceRegistry, _ user: String) async throws -> Tally_V1_PresenceStatus? {
        try await registry.read([user], nowMs: PresenceRegistry.nowMs())[user]?.status
    }

    @Test func theMostPresentDeviceWins() async throws {
        try await Self.withRegistry { registry in
            _ = try await Self.touch(registry, "ann", "phone", .away, activity: "lunch")
            do {
                let outcome = try await Self.status(registry, "ann")
                #expect(outcome == .away)
            }
            _ = try await Self.touch(registry, "ann", "laptop", .busy)
            do {
                let outcome = try await Self.status(registry, "ann")
                #expect(outcome == .busy)
            }
            _ = try await Self.touch(registry, "ann", "tablet", .online)
            do {
                let outcome = try await Self.status(registry, "ann")
                #expect(outcome == .online)
            }
            try await registry.leave(user: "ann", device: "tablet", session: "stablet", nowMs: PresenceRegistry.nowMs())
            do {
                let outcome = try await Self.status(registry, "ann")
                #expect(outcome == .busy)
            }
            try await registry.leave(user: "ann", device: "laptop", session: "slaptop", nowMs: PresenceRegistry.nowMs())
            let state = try #require(try await registry.read(["ann"], nowMs: PresenceRegistry.nowMs())["ann"])
            #expect(state.status == .away && state.activity == "lunch")
            try await registry.leave(user: "ann", device: "phone", session: "sphone", nowMs: PresenceRegistry.nowMs())
            do {
                let outcome = try await Self.status(registry, "ann")
                #expect(outcome == .offline)
            }
            do {
                let outcome = try await Self.status(registry, "nobody")
                #expect(outcome == .offline)
            }
        }
    }

    @Test func versionsGrowWithEveryChangeAndOnlyThen() async throws {
        try await Self.withRegistry { registry in
            guard case .accepted(let first) = try await Self.touch(registry, "bob", "phone", .online),
                case .accepted(let same) = try await Self.touch(registry, "bob", "phone", .online),
                case .accepted(let busy) = try await Self.touch(registry, "bob", "phone", .busy)
            else { Issue.record("refused"); return }
            #expect(same.version == first.version)
            #expect(busy.version > first.version)
        }
    }

    @Test func devicesPerUserAreLimited() async throws {
        try await Self.withRegistry { registry in
            do {
                let outcome = try await Self.touch(registry, "cy", "a", .online, maxDevices: 2)
                #expect(outcome != .tooManyDevices)
            }
            do {
                let outcome = try await Self.touch(registry, "cy", "b", .online, maxDevices: 2)
                #expect(outcome != .tooManyDevices)
            }
            do {
                let outcome = try await Self.touch(registry, "cy", "c", .online, maxDevices: 2)
                #expect(outcome == .tooManyDevices)
            }
            do {
                let outcome = try await Self.touch(registry, "cy", "a", .busy, maxDevices: 2)
                #expect(outcome != .tooManyDevices, "a known device may change")
            }
        }
    }

    @Test func anotherStreamOfTheDeviceSupersedesTheFirst() async throws {
        try await Self.withRegistry { registry in
            _ = try await Self.touch(registry, "dee", "phone", .online, session: "old")
            _ = try await Self.touch(registry, "dee", "phone", .online, session: "new")
            do {
                let outcome = try await Self.touch(registry, "dee", "phone", .online, session: "old", takeover: false)
                #expect(outcome == .superseded)
            }
            // The old stream's end does not take the new one's device away.
            try await registry.leave(user: "dee", device: "phone", session: "oldphone", nowMs: PresenceRegistry.nowMs())
            do {
                let outcome = try await Self.status(registry, "dee")
                #expect(outcome == .online)
            }
        }
    }

    @Test func expiredDevicesAreSweptOnceByConcurrentSweepers() async throws {
        try await Self.withRegistry { registry in
            _ = try await Self.touch(registry, "eve", "phone", .online, ttlMs: 50)
            _ = try await Self.touch(registry, "fay", "phone", .online, ttlMs: 60_000)
            // Past its deadline it reads OFFLINE even before anyone swept.
            #expect(try await registry.read(["eve"], nowMs: PresenceRegistry.nowMs() + 100)["eve"]?.status == .offline)
            let later = PresenceRegistry.nowMs() + 100
            async let first = registry.sweep(nowMs: later, lease: .seconds(2), limit: 100)
            async let second = registry.sweep(nowMs: later, lease: .seconds(2), limit: 100)
            #expect(try await first + second == 1)
            do {
                let outcome = try await Self.status(registry, "fay")
                #expect(outcome == .online)
            }
            #expect(try await registry.sweep(nowMs: later, lease: .seconds(2), limit: 100) == 0)
        }
    }

    @Test func aHeartbeatAfterTheClaimKeepsTheDevice() async throws {
        try await Self.withRegistry { registry in
            _ = try await Self.touch(registry, "gus", "phone", .online, ttlMs: 10)
            try await Task.sleep(for: .milliseconds(20))
            // Refreshed before the sweeper's leave: the device stays and is due again at its new deadline.
            _ = try await Self.touch(registry, "gus", "phone", .online, ttlMs: 60_000)
            #expect(try await registry.sweep(nowMs: PresenceRegistry.nowMs(), lease: .seconds(2), limit: 100) == 0)
            do {
                let outcome = try await Self.status(registry, "gus")
                #expect(outcome == .online)
            }
        }
    }
}
