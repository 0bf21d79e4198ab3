import NIOCore

// Push streams (event subscriptions): each queues its messages on the connection's event loop,
// held until the reply of the call that opened it is written, ended when it overflows.
extension RPCConnectionHandler {
    // MARK: Push streams

    /// One push stream's queue and state; confined to the event loop like the rest.
    struct PushStreamState {
        let options: RPCPushStreamOptions
        /// Messages wait until the reply of the call that opened the stream is written.
        var held: Bool
        let openedBy: UInt64
        var pending = CircularBuffer<RPCPushMessage>()
        var lastWritten: Int64?
        /// `finish(with:)`'s message, written once `pending` is.
        var finalMessage: ByteBuffer?
        var drainWaiters: [CheckedContinuation<Bool, Never>] = []
    }

    func openPushStream(_ id: UInt64, openedBy requestNumber: UInt64, options: RPCPushStreamOptions) {
        guard context.channel.isActive, !closing else {
            options.onEnd(.connectionClosed)
            return
        }
        // A call that already answered (or was a notification) holds nothing back.
        let held = runningRequests.contains(requestNumber)
        pushStreams[id] = PushStreamState(options: options, held: held, openedBy: requestNumber)
    }

    // The stream's state is changed in place (`pushStreams.values[index]`), never through a copy: a
    // copy shares `pending`'s storage, so appending to it would copy the whole queue, every message
    // retained, on each send to a client that does not read (O(capacity) per event).
    // Not flushed here: the handle's task flushes once after all the operations it took.
    func pushSend(_ id: UInt64, _ messages: [RPCPushMessage]) {
        guard let index = pushStreams.index(forKey: id), pushStreams.values[index].finalMessage == nil else { return }
        if !pushStreams.values[index].held, pushStreams.values[index].pending.isEmpty, context.channel.isWritable {
            for message in messages { write(message, of: &pushStreams.values[index]) }
            return
        }
        pushStreams.values[index].pending.append(contentsOf: messages)
        // Held (its call's reply is not written yet): checked when released.
        if !pushStreams.values[index].held, pushStreams.values[index].pending.count > pushStreams.values[index].options.capacity {
            overflow(id)
        }
    }

    func pushFinish(_ id: UInt64, last: ByteBuffer) {
        guard let index = pushStreams.index(forKey: id), pushStreams.values[index].finalMessage == nil else { return }
        pushStreams.values[index].finalMessage = last
        drain(id)
    }

    func pushClose(_ id: UInt64) {
        endPushStream(id, .closed)
    }

    func pushDrained(_ id: UInt64, _ continuation: CheckedContinuation<Bool, Never>) {
        // Frames written since the last flush are not in the channel yet, so its writability does
        // not count them: flush first, or a sender with a backlog learns "drained" while what it
        // sent is still in `output`, and its next batch finds the connection full. (Before reading
        // the stream: a flush can change writability, which drains streams right away.)
        flushIfNeeded()
        guard let index = pushStreams.index(forKey: id) else { return continuation.resume(returning: false) }
        let stream = pushStreams.values[index]
        if !stream.held, stream.pending.isEmpty, context.channel.isWritable { return continuation.resume(returning: true) }
        pushStreams.values[index].drainWaiters.append(continuation)
    }

    /// The reply of call `requestNumber` was just written: its streams start (or, when it failed,
    /// end).
    func releasePushStreams(openedBy requestNumber: UInt64, outcome: RPCOutcome) {
        if pushStreams.isEmpty { return }
        for (id, stream) in pushStreams where stream.held && stream.openedBy == requestNumber {
            if case .error = outcome {
                endPushStream(id, .callFailed)
                continue
            }
            pushStreams[id]!.held = false
            if stream.pending.count > stream.options.capacity {
                overflow(id)
            } else {
                drain(id)
            }
        }
    }

    /// The connection can take more: every stream writes what waits.
    func drainPushStreams() {
        for id in Array(pushStreams.keys) { drain(id) }
    }

    /// Writes what `id` has waiting (the queue is at most `capacity` long, so this is bounded),
    /// then its final message, and wakes who waits for it to drain.
    private func drain(_ id: UInt64) {
        guard let index = pushStreams.index(forKey: id), !pushStreams.values[index].held, context.channel.isWritable else { return }
        let wrote = !pushStreams.values[index].pending.isEmpty || pushStreams.values[index].finalMessage != nil
        while let message = pushStreams.values[index].pending.popFirst() { write(message, of: &pushStreams.values[index]) }
        if let last = pushStreams.values[index].finalMessage {
            writeFrame { $0.writeImmutableBuffer(last) }
            scheduleFlush()
            endPushStream(id, .finished)
            return
        }
        let waiters = pushStreams.values[index].drainWaiters
        pushStreams.values[index].drainWaiters = []
        if wrote { scheduleFlush() }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    private func write(_ message: RPCPushMessage, of stream: inout PushStreamState) {
        writeFrame {
            $0.writeImmutableBuffer(message.head)
            $0.writeImmutableBuffer(message.body)
        }
        stream.lastWritten = message.position
    }

    /// Too many messages wait: drop them, tell the client where the stream stopped, end it.
    private func overflow(_ id: UInt64) {
        guard let stream = pushStreams[id] else { return }
        let lastWritten = stream.lastWritten
        pushStreams[id]!.pending.removeAll()
        writeFrame { $0.writeImmutableBuffer(stream.options.overflowMessage(lastWritten)) }
        scheduleFlush()
        logger.notice("push stream overflowed", metadata: ["capacity": "\(stream.options.capacity)"])
        endPushStream(id, .overflowed(lastWritten: lastWritten))
    }

    private func endPushStream(_ id: UInt64, _ reason: RPCPushStreamEnd) {
        guard let stream = pushStreams.removeValue(forKey: id) else { return }
        for waiter in stream.drainWaiters { waiter.resume(returning: false) }
        stream.options.onEnd(reason)
    }

    func endAllPushStreams() {
        for id in Array(pushStreams.keys) { endPushStream(id, .connectionClosed) }
    }
}
