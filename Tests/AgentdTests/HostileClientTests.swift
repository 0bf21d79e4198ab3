import Testing

/// Issue 17: what a local user who means harm can do to the daemon, each hole as a test that failed
/// before its fix. One suite, one file per area (`HostileClientTests+<Area>.swift`); SECURITY.md's
/// table names the test of each attack.
@Suite("Hostile clients", .blockingIO, .timeLimit(.minutes(5)))
struct HostileClientTests {}
