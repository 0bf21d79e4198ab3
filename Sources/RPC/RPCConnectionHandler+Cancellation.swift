import Logging
import NIOCore

// `$/cancelRequest` bookkeeping: calls running by id, cancels that arrive before their request,
// and ids answered recently (a late cancel must not hit the next call reusing the id).
extension RPCConnectionHandler {
    func cancelRequest(_ request: RPCRequest) {
        guard let params = request.params, !request.paramsAreByPosition, let id = findRequestID(inPrefix: params) else {
            logger.debug("$/cancelRequest without an id ignored")
            return
        }
        if let cancellation = runningByID[id] {
            cancellation.cancel(.requestedByClient)
        } else if recentlyAnswered.contains(id) {
            logger.debug("$/cancelRequest for a call already answered ignored", metadata: ["id": "\(id)"])
        } else {
            // Not started yet (or already answered): remember it so that a request arriving just
            // after its cancel is answered as cancelled instead of running.
            earlyCancels.append(id)
            if earlyCancels.count > Self.maxEarlyCancels { earlyCancels.removeFirst() }
        }
    }

    /// Remembers the last few ids answered after running (a ring of `maxEarlyCancels`).
    func rememberAnswered(_ id: RPCID) {
        if recentlyAnswered.count < Self.maxEarlyCancels {
            recentlyAnswered.append(id)
        } else {
            recentlyAnswered[recentlyAnsweredIndex] = id
            recentlyAnsweredIndex = (recentlyAnsweredIndex + 1) % Self.maxEarlyCancels
        }
    }

    func cancelAll(_ reason: RPCCancellationReason) {
        let calls = Array(running.values)
        for call in calls { call.cancel(reason) }
    }
}
