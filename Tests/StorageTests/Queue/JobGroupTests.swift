import TestSupport
import Foundation
import Synchronization
import Testing

@testable import Storage

/// Claims bounded by payload bytes, and workers that run claimed jobs in groups.
@Suite("Job groups")
struct JobGroupTests {
    static func payload(bytes: Int) -> [UInt8] { [UInt8](repeating: UInt8(ascii: "x"), count: bytes) }

    @Test("a claim takes jobs while their payloads fit in its bytes, and always the first")
    func claimByBytes() async throws {
        try await JobQueueTests.withQueue { queue async throws in
            try await queue.enqueue((0..<5).map { NewJob(id: "b\($0)", payload: Self.payload(bytes: 100), traceParent: nil) })
            try await queue.enqueue(NewJob(id: "big", payload: Self.payload(bytes: 10_000), traceParent: nil))
            // Each stored payload is the 100 bytes plus a few of meta: two fit in 250, not three.
            let first = try await queue.claim(max: 10, maxBytes: 250)
            #expect(first.map(\.id) == ["b0", "b1"])
            let second = try await queue.claim(max: 10, maxBytes: 250)
            #expect(second.map(\.id) == ["b2", "b3"])
            let third = try await queue.claim(max: 10, maxBytes: 250)
            #expect(third.map(\.id) == ["b4"], "the big job does not fit beside it")
            let alone = try await queue.claim(max: 10, maxBytes: 250)
            #expect(alone.map(\.id) == ["big"], "a job larger than the bound is claimed alone")
            #expect(alone.first?.payload.count == 10_000)
            #expect(try await queue.claim(max: 10, maxBytes: 250).isEmpty)
        }
    }

    @Test("higher priorities still come first when a claim is bounded by bytes")
    func claimByBytesKeepsPriorities() async throws {
        try await JobQueueTests.withQueue { queue async throws in
            try await queue.enqueue([
                NewJob(id: "low", payload: Self.payload(bytes: 10), priority: 0),
                NewJob(id: "high", payload: Self.payload(bytes: 10), priority: 9),
            ])
            #expect(try await queue.claim(max: 10, maxBytes: 1000).map(\.id) == ["high", "low"])
        }
    }

    @Test("groups follow the claim order within their jobs and bytes; a retried job runs alone")
    func grouping() {
        func job(_ id: String, bytes: Int, attempt: Int = 1) -> Job {
            Job(id: id, payload: Self.payload(bytes: bytes), attempt: attempt, maxAttempts: 5, lease: "l")
        }
        let jobs = [job("a", bytes: 10), job("b", bytes: 10), job("c", bytes: 10), job("r", bytes: 1, attempt: 2),
                    job("d", bytes: 90), job("e", bytes: 10)]
        let groups = JobWorker.groups(of: jobs, JobWorker.Grouping(maxJobs: 2, maxBytes: 100))
        #expect(groups.map { $0.map(\.id) } == [["a", "b"], ["r"], ["c", "d"], ["e"]])
        #expect(JobWorker.groups(of: jobs, .single).map(\.count) == [1, 1, 1, 1, 1, 1])
    }

    @Test("a group that fails runs again job by job: a poison job fails alone, every other job completes once")
    func poisonJobFailsAlone() async throws {
        try await JobQueueTests.withQueue({
            $0.maxAttempts = 1
        }) { queue async throws in
            try await queue.enqueue((0..<40).map { NewJob(id: "g\($0)", payload: Array("\($0)".utf8)) })
            try await queue.enqueue(NewJob(id: "poison", payload: Array("poison".utf8)))
            let done = Mutex<[String: Int]>([:])
            let groupCalls = Atomic<Int>(0)
            let record: @Sendable (Job) throws -> Void = { job in
                if job.id == "poison" { throw ProviderError() }
                done.withLock { $0[job.id, default: 0] += 1 }
            }
            let worker = JobWorker(
                queue: queue,
                configuration: .init(concurrency: 2, batchSize: 100, pollInterval: .milliseconds(5), drainTimeout: .seconds(5),
                                     grouping: .init(maxJobs: 10, maxBytes: 1 << 20)),
                handler: { job in try record(job) },
                groupHandler: { jobs in
                    groupCalls.add(1, ordering: .relaxed)
                    // All or nothing, as one transaction would be.
                    if jobs.contains(where: { $0.id == "poison" }) { throw ProviderError() }
                    for job in jobs { try record(job) }
                })
            let running = Task { try await worker.run() }
            _ = try await eventually(attempts: 1500) {
                let stats = try await queue.stats()
                return stats.completed == 40 && stats.dead == 1
            }
            worker.stop()
            try await running.value
            let stats = try await queue.stats()
            #expect(stats.completed == 40 && stats.dead == 1)
            #expect(try await queue.deadLetters() == ["poison"])
            #expect(done.withLock { $0.count } == 40 && done.withLock { $0.values.allSatisfy { $0 == 1 } })
            #expect(groupCalls.load(ordering: .relaxed) < 40, "jobs ran in groups")
        }
    }

    @Test("jobs done together each log their completion in the trace of the call that queued them")
    func groupKeepsEachJobsTrace() async throws {
        try await JobQueueTests.withQueue { queue async throws in
            let parents = (0..<3).map { "00-\(String(repeating: "\($0 + 1)", count: 32))-00f067aa0ba902b7-01" }
            for (index, parent) in parents.enumerated() {
                try await queue.enqueue(NewJob(id: "t\(index)", payload: Array("\(index)".utf8), traceParent: parent))
            }
            let recorder = JobQueueTests.LogRecorder()
            let groupSizes = Mutex<[Int]>([])
            let worker = JobWorker(
                queue: queue,
                configuration: .init(concurrency: 1, batchSize: 10, pollInterval: .milliseconds(5), drainTimeout: .seconds(5),
                                     grouping: .init(maxJobs: 10, maxBytes: 1 << 20)),
                logger: recorder.logger,
                handler: { _ in },
                groupHandler: { jobs in groupSizes.withLock { $0.append(jobs.count) } })
            let running = Task { try await worker.run() }
            #expect(try await eventually(attempts: 1000) { try await queue.stats().completed == 3 })
            worker.stop()
            try await running.value
            #expect(groupSizes.withLock { $0 } == [3], "the three jobs ran as one group")
            let done = recorder.lines.withLock { $0.filter { $0.message == "job done" } }
            let traced = Dictionary(done.map { ("\($0.metadata["job"] ?? "?")", $0.traceParent ?? "none") }, uniquingKeysWith: { a, _ in a })
            #expect(done.count == 3 && traced == ["t0": parents[0], "t1": parents[1], "t2": parents[2]])
        }
    }
}
