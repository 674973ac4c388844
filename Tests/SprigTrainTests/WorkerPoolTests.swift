// WorkerPool (the GEMMs' and parallelFor's threads): every part of every job runs exactly once,
// on more than one thread, also when jobs are nested or come from two threads at once.

import Dispatch
import Glibc
import Synchronization
import XCTest
@testable import SprigTrain

final class WorkerPoolTests: XCTestCase {
    /// Thousands of jobs back to back, of 1 to 5 parts: each part counted once. Back-to-back
    /// jobs are where a worker that is late for one job meets the next one's state.
    func testEveryPartRunsOnceAcrossManyJobs() {
        let jobs = 4000
        var counts = [Int](repeating: 0, count: jobs * 5)
        counts.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress!
            for job in 0..<jobs {
                let parts = 1 + job % 5
                XCTAssertTrue(WorkerPool.shared.run(parts: parts) { part in base[job * 5 + part] += 1 })
            }
        }
        for job in 0..<jobs {
            let parts = 1 + job % 5
            for part in 0..<5 where counts[job * 5 + part] != (part < parts ? 1 : 0) {
                XCTFail("job \(job) of \(parts) parts: part \(part) ran \(counts[job * 5 + part]) times")
                return
            }
        }
    }

    /// The two parts of a job run on two threads at once: whichever thread takes part 0 waits
    /// (up to 5 s) for part 1 to start, which only another thread can do.
    func testPartsRunConcurrently() {
        for _ in 0..<20 {
            let started = Atomic<Bool>(false)
            let sawOther = Atomic<Bool>(false)
            XCTAssertTrue(WorkerPool.shared.run(parts: 2) { part in
                if part == 1 { started.store(true, ordering: .releasing); return }
                let deadline = DispatchTime.now().uptimeNanoseconds + 5_000_000_000
                while DispatchTime.now().uptimeNanoseconds < deadline {
                    if started.load(ordering: .acquiring) { sawOther.store(true, ordering: .relaxed); return }
                }
            })
            XCTAssertTrue(sawOther.load(ordering: .relaxed), "part 1 did not start while part 0 ran")
            // Let the workers fall asleep now and then, so that waking them is tested too.
            usleep(2_000)
        }
    }

    /// A job started from inside a part finds the pool busy; `concurrentParts` then runs it on
    /// Dispatch, and every inner part still runs once.
    func testNestedJobsFallBack() {
        let counts = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 12)
        for i in 0..<12 { (counts + i).initialize(to: Atomic<Int>(0)) }
        defer { counts.deallocate() }
        var nestedRan = [Bool](repeating: false, count: 3)
        nestedRan.withUnsafeMutableBufferPointer { ran in
            let ranBase = ran.baseAddress!
            concurrentParts(3) { outer in
                ranBase[outer] = !WorkerPool.shared.run(parts: 2) { _ in }
                concurrentParts(4) { inner in counts[outer * 4 + inner].add(1, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(nestedRan, [true, true, true], "a run inside a part must report the pool busy")
        XCTAssertEqual((0..<12).map { counts[$0].load(ordering: .relaxed) }, [Int](repeating: 1, count: 12))
    }

    /// Two threads submitting jobs at once: one gets the pool, the other falls back; nothing is
    /// lost or run twice.
    func testConcurrentCallers() {
        let jobs = 300
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 2 * jobs * 3)
        counts.initialize(repeating: 0, count: 2 * jobs * 3)
        defer { counts.deallocate() }
        let shared = UncheckedSendable(counts)
        DispatchQueue.concurrentPerform(iterations: 2) { caller in
            for job in 0..<jobs {
                concurrentParts(3) { part in shared.value[(caller * jobs + job) * 3 + part] += 1 }
            }
        }
        let wrong = (0..<(2 * jobs * 3)).filter { counts[$0] != 1 }
        XCTAssertEqual(wrong.count, 0, "slots not run exactly once: \(wrong.prefix(5))")
    }
}
