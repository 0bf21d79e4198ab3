import NIOCore

/// Runs a task's jobs on one NIO event loop: the executor preference of every handler task, so a
/// call's task starts on the loop its request arrived on, resumes there after each `await`, and
/// completes its reply there, without hopping through the global concurrent pool.
///
/// Measured on the append and read paths (BENCHMARKS.md): each hop between the loop, the global
/// pool and back cost a thread wake-up, together more CPU than the handler's own work. The
/// trade-off is the one `onInline` makes, for the stretches between `await`s only: while a
/// handler computes, the other connections of its loop wait. Handlers hand long CPU work (password
/// hashing) to a thread pool.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // `any EventLoop` is Sendable; the class holds nothing else.
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
