// WorkerPool: the trainer's own worker threads, for the threaded GEMMs and the loops around them
// (`gemmParallel`, `parallelFor`).
//
// `DispatchQueue.concurrentPerform` wakes a sleeping Dispatch worker on every call. On a virtual
// machine that costs tens of microseconds, and a 256×256×256 product at 2 threads takes about
// 170 µs: the 2-thread GEMM ran at 0.62× OpenBLAS there, whose threads spin between calls.
// These workers do the same. After each job a worker spins on the job counter for
// `spinSeconds`, so the next call of a training step finds it awake, and only then sleeps on a
// condition variable.
//
// One job at a time. The caller publishes it in `state` (generation, part count, next part),
// claims parts like any worker, and spins until every part has finished. A caller that finds
// the pool busy (another thread's job, or a job started from inside a job) gets `false` and
// runs its parts some other way.
//
// Why a late worker cannot run a part twice or with the wrong body: a part is claimed by one
// compare-and-exchange on `state`, which holds the generation with the next part, so a worker
// still looking at an earlier generation fails its exchange and never reads `body`; and the
// caller keeps `body` until `finished` counts every claimed part, so a claimed part always
// reads its own job's body.

import Dispatch
import Glibc
import Synchronization

final class WorkerPool: @unchecked Sendable {
    /// The pool of the process. Its threads start on first use, one per extra part, and
    /// live as long as the process.
    static let shared = WorkerPool()

    /// How long a worker waits awake for the next job before it sleeps (1 ms: a training
    /// step's GEMMs come tens of microseconds apart; the spin ends soon after training does).
    static let spinSeconds = 1e-3

    /// Parts per job at most (`state`'s fields are 20 bits wide).
    static let maxParts = (1 << 20) - 1

    /// generation << 40 | parts << 20 | next unclaimed part (generation: 23 bits, wrapping).
    private let state = Atomic<Int>(0)
    /// Parts of the current job that have finished.
    private let finished = Atomic<Int>(0)
    /// Workers asleep on `condition`, or about to be (see `sleep`).
    private let sleepers = Atomic<Int>(0)
    /// Whether a job is running (held from `run`'s start to its end).
    private let busy = Atomic<Bool>(false)
    /// The current job's body; written only by the caller holding `busy`, before it publishes
    /// the generation, and read only by a thread that has claimed one of its parts.
    private var body: ((Int) -> Void)?
    /// Worker threads started; only the caller holding `busy` changes it.
    private var workers = 0
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    /// Runs `body(0)`, …, `body(parts − 1)`, each once, on the calling thread and up to
    /// `parts − 1` workers, and returns when all have returned. Returns false, having run
    /// nothing, when the pool is busy with another job (then run the parts another way).
    func run(parts: Int, _ body: (Int) -> Void) -> Bool {
        precondition(parts >= 1 && parts <= WorkerPool.maxParts, "WorkerPool.run: parts=\(parts)")
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        if parts == 1 {
            body(0)
            return true
        }
        startWorkers(parts - 1)
        withoutActuallyEscaping(body) { escapable in
            self.body = escapable
            finished.store(0, ordering: .relaxed)
            // 23 bits, so that `state` stays positive; a wrap only makes a worker that slept
            // through 2^23 jobs sleep on, and the caller never waits for a particular worker.
            let generation = ((state.load(ordering: .relaxed) >> 40) &+ 1) & 0x7F_FFFF
            // Sequentially consistent, as is the sleepers' count in `sleep`: either the caller
            // sees a worker going to sleep, or that worker sees the new generation.
            state.store(generation << 40 | parts << 20, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(condition)
                pthread_mutex_unlock(mutex)
            }
            work(generation: generation)
            var spins = 0
            while finished.load(ordering: .acquiring) < parts {
                spins &+= 1
                // A worker that was preempted: give its core back now and then.
                if spins & 1023 == 0 { sched_yield() }
            }
            self.body = nil
        }
        return true
    }

    /// Claims and runs parts of job `generation` until none is left (or the job is over).
    private func work(generation: Int) {
        var current = state.load(ordering: .acquiring)
        while current >> 40 == generation {
            let next = current & 0xF_FFFF, parts = (current >> 20) & 0xF_FFFF
            if next >= parts { return }
            let (exchanged, seen) = state.compareExchange(expected: current, desired: current &+ 1,
                                                          ordering: .acquiringAndReleasing)
            if exchanged {
                body.unsafelyUnwrapped(next)
                finished.add(1, ordering: .releasing)
                current = state.load(ordering: .acquiring)
            } else {
                current = seen
            }
        }
    }

    /// Starts workers until there are `count`, or until a thread cannot be created (the parts
    /// are claimed, not assigned, so fewer workers, or none, still run every part).
    private func startWorkers(_ count: Int) {
        while workers < count {
            var thread = pthread_t()
            let context = Unmanaged.passUnretained(self).toOpaque()
            let created = pthread_create(&thread, nil, { context in
                Unmanaged<WorkerPool>.fromOpaque(context!).takeUnretainedValue().workerLoop()
                return nil
            }, context)
            if created != 0 { return }
            pthread_detach(thread)
            workers &+= 1
        }
    }

    private func workerLoop() {
        var seen = state.load(ordering: .acquiring) >> 40
        while true {
            var spins = 0
            let deadline = monotonicSeconds() + WorkerPool.spinSeconds
            while state.load(ordering: .acquiring) >> 40 == seen {
                spins &+= 1
                if spins & 255 == 0 && monotonicSeconds() > deadline {
                    sleep(untilAfter: seen)
                }
            }
            seen = state.load(ordering: .acquiring) >> 40
            work(generation: seen)
        }
    }

    /// Sleeps until the generation is no longer `seen`.
    private func sleep(untilAfter seen: Int) {
        pthread_mutex_lock(mutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while state.load(ordering: .sequentiallyConsistent) >> 40 == seen {
            pthread_cond_wait(condition, mutex)
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
    }
}

/// Seconds on the monotonic clock.
@inline(__always)
private func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

/// Runs `body(0)`, …, `body(parts − 1)` concurrently: on `WorkerPool.shared`, or with
/// `DispatchQueue.concurrentPerform` while the pool is busy (a job started from inside a job,
/// or from another thread at the same time).
func concurrentParts(_ parts: Int, _ body: (Int) -> Void) {
    if parts <= WorkerPool.maxParts && WorkerPool.shared.run(parts: parts, body) { return }
    withoutActuallyEscaping(body) { escapable in
        let shared = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: parts) { shared.value($0) }
    }
}
