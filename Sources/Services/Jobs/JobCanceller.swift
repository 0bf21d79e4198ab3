/// Stops the attempt of a job running in this process (the workers implement it): `jobs.cancel`
/// marks the job `cancelRequested` in the queue, then tells the local worker at once instead of
/// waiting for its next heartbeat.
public protocol JobCanceller: Sendable {
    /// Cancels the task running `jobID` here, if any; returns whether there was one.
    @discardableResult
    func cancelRunning(jobID: String) -> Bool
}
