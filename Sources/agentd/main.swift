import Daemon

// The daemon lives in the Daemon library (so that tests can build its graph in process); this
// executable only runs its command line.
await AgentdMain.main()
