import Dispatch
import Synchronization
import Testing

@testable import RPC

/// The hand-off under the event bus, the group-commit writer and a connection's pushes: one drain
/// scheduled at a time, nothing lost or taken twice, order kept.
@Suite("Coalescing queue")
struct CoalescingQueueTests {
    @Test("only the first append while no drain is scheduled asks for one; takeAll empties and re-arms")
    func oneDrainAtATime() {
        let queue = CoalescingQueue<Int>()
        #expect(queue.append(1) == true)
        #expect(queue.append(2) == false)
        #expect(queue.append(contentsOf: [3, 4]) == false)
        #expect(queue.count == 4)
        #expect(queue.takeAll() == [1, 2, 3, 4])
        #expect(queue.count == 0)
        // Taken: the next append schedules again, even with the drain still working.
        #expect(queue.append(contentsOf: [5]) == true)
        #expect(queue.takeAll() == [5])
        // A drain that finds nothing (its items taken by a previous one) re-arms too.
        #expect(queue.takeAll() == [])
        #expect(queue.append(6) == true)
    }

    @Test("a bounded take keeps the drain claimed while items remain, and releases it when none do")
    func boundedTake() {
        let queue = CoalescingQueue<Int>()
        #expect(queue.append(contentsOf: Array(1...5)) == true)
        let first = queue.take(upTo: 2)
        #expect(first.items == [1, 2] && first.more)
        // Still claimed: the caller schedules the next drain itself, appends do not.
        #expect(queue.append(6) == false)
        let second = queue.take(upTo: 10)
        #expect(second.items == [3, 4, 5, 6] && !second.more)
        #expect(queue.append(7) == true)
    }

    @Test("concurrent producers and a scheduled drain: every item drained once, each producer's in order")
    func concurrentProducers() async {
        let producers = 4
        let perProducer = 5_000
        let queue = CoalescingQueue<(producer: Int, n: Int)>()
        let drained = Mutex<[(producer: Int, n: Int)]>([])
        let consumer = DispatchQueue(label: "coalescing-queue-test")
        let group = DispatchGroup()

        @Sendable func drain() {
            let items = queue.takeAll()
            drained.withLock { $0 += items }
            group.leave()
        }
        DispatchQueue.concurrentPerform(iterations: producers) { producer in
            for n in 0..<perProducer where queue.append((producer, n)) {
                group.enter()
                consumer.async { drain() }
            }
        }
        await withCheckedContinuation { continuation in group.notify(queue: .global()) { continuation.resume() } }

        let items = drained.withLock { $0 }
        #expect(items.count == producers * perProducer)
        for producer in 0..<producers {
            #expect(items.filter { $0.producer == producer }.map(\.n) == Array(0..<perProducer))
        }
        #expect(queue.count == 0)
    }
}
