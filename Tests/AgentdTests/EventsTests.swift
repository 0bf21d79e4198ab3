import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// The event bus through the daemon's router and middleware, in process (`InProcessDaemon`):
/// subscriptions (topics, filters, catch-up with `since`), replays, other users' events,
/// unsubscribing and the errors. What only a process shows stays on the real binary (the extension
/// below): a client that stops reading (a real socket's backpressure), closing sockets with unread
/// events (the daemon's log), a crash between a change's commit and its dispatch to the audit log,
/// and retention at start.
///
/// A connection from the test's own uid acts as its linked account; a second user registers and
/// logs in (`signIn`), and more of that user's connections authenticate with the token.
@Suite("Events (in process; slow clients, crashes and retention on the binary)", .blockingIO, .timeLimit(.minutes(2)))
struct EventsTests {
    // MARK: Subscriptions

    @Test("changes made on another connection arrive after the subscribe reply, in seq order, with their topics and data")
    func subscribeToEverything() async throws {
        try await withInProcessDaemon { daemon in
            let changes = try await daemon.connect()
            _ = try await changes.send(Modules.Create.self, .init(title: "Before"))
            let stored = try await Self.replayAll(changes, since: 0)
            let newestBefore = try #require(stored.last?["seq"]?.intValue)

            // The reply is the first message: no event may come before the client knows the id.
            let subscriber = try await daemon.connect()
            try await subscriber.write(#"{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"topics":["*"]}}"# + "\n")
            let reply = try JSON(parsing: try await subscriber.nextMessage())
            #expect(reply["id"] == .integer(1), "first message after subscribing: \(reply)")
            let subscription = try #require(reply["result"]?["subscription"]?.stringValue, "\(reply)")
            let after = try #require(reply["result"]?["after"]?.intValue, "\(reply)")
            #expect((0...newestBefore).contains(after), "after \(after), newest stored \(newestBefore)")

            let moduleID = try await changes.send(Modules.Create.self, .init(title: "Plans", tags: ["a"])).id
            _ = try await changes.send(Modules.Update.self, .init(id: moduleID, title: "Plans, v2"))
            let chatID = try await changes.send(Chats.Create.self, .init(moduleId: moduleID, title: "Talk")).id
            let messageID = try await changes.send(Chats.Messages.Append.self, .init(chatId: chatID, role: .user, content: "hello")).id
            _ = try await changes.send(Modules.Delete.self, .init(id: moduleID))

            let received = try await Self.events(subscriber, until: { $0["topic"]?.stringValue == "module.deleted" })
            await Self.expectNothing(subscriber)
            for event in received { #expect(event["subscription"]?.stringValue == subscription, "event: \(event)") }
            // Exactly what the store holds after `after`, in seq order (the notification is the
            // replay item plus its subscription).
            let replayed = try await Self.replayAll(changes, since: Int64(after))
            #expect(received.map(Self.withoutSubscription) == replayed)
            let seqs = received.compactMap { $0["seq"]?.intValue }
            #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count && seqs.allSatisfy { $0 > after }, "seqs \(seqs) after \(after)")

            let mine = Array(received.suffix(5))
            #expect(
                mine.map { $0["topic"]?.stringValue } == [
                    "module.created", "module.updated", "chat.created", "chat.message.created", "module.deleted",
                ])
            let expectedData = [
                #"{"moduleId":"\#(moduleID)","title":"Plans","tags":["a"]}"#,
                #"{"moduleId":"\#(moduleID)","fields":["title"]}"#,
                #"{"chatId":"\#(chatID)","moduleId":"\#(moduleID)","title":"Talk"}"#,
                #"{"chatId":"\#(chatID)","messageId":"\#(messageID)","role":"user","depth":1}"#,
                #"{"moduleId":"\#(moduleID)"}"#,
            ]
            for (event, data) in zip(mine, expectedData) {
                #expect(event["data"] == (try JSON(parsing: data)), "event: \(event)")
                #expect(event["occurredAt"]?.stringValue?.hasSuffix("Z") == true, "event: \(event)")
            }
        }
    }

    @Test(
        "topic patterns and filters: chat.* takes chat and message events only; filter.chatId one chat; filter.moduleId its module and that module's chats"
    )
    func patternsAndFilters() async throws {
        try await withInProcessDaemon { daemon in
            let changes = try await daemon.connect()
            let module = try await changes.send(Modules.Create.self, .init(title: "One")).id
            let otherModule = try await changes.send(Modules.Create.self, .init(title: "Two")).id
            let chat = try await changes.send(Chats.Create.self, .init(moduleId: module, title: "In one")).id
            let otherChat = try await changes.send(Chats.Create.self, .init(moduleId: otherModule, title: "In two")).id

            // From the newest stored event, so that none of the set-up's events can arrive.
            let since = try await Self.newestSeq(changes)
            let subscriber = try await daemon.connect()
            func subscribe(_ topics: [String], _ filter: Events.Filter? = nil) async throws -> Events.Subscribe.Result {
                try await subscriber.send(Events.Subscribe.self, .init(topics: topics, filter: filter, since: since))
            }
            let chats = try await subscribe(["chat.*"])
            let oneChat = try await subscribe(["*"], .init(chatId: chat))
            let oneModule = try await subscribe(["*"], .init(moduleId: module))
            let oneModuleMessages = try await subscribe(["chat.message.*"], .init(moduleId: module))
            let all = [chats, oneChat, oneModule, oneModuleMessages]
            #expect(all.allSatisfy { $0.after == since })

            // Each change, and the subscriptions that must see it.
            var expected: [String: [String]] = [
                chats.subscription: [], oneChat.subscription: [], oneModule.subscription: [], oneModuleMessages.subscription: [],
            ]
            func seen(by subscriptions: [Events.Subscribe.Result], _ topic: String) {
                for subscription in subscriptions { expected[subscription.subscription]!.append(topic) }
            }
            func append(_ chatID: String, _ content: String) async throws {
                _ = try await changes.send(Chats.Messages.Append.self, .init(chatId: chatID, role: .user, content: content))
            }
            _ = try await changes.send(Modules.Update.self, .init(id: module, title: "One, v2"))
            seen(by: [oneModule], "module.updated")
            _ = try await changes.send(Modules.Update.self, .init(id: otherModule, title: "Two, v2"))
            try await append(chat, "a")
            seen(by: [chats, oneChat, oneModule, oneModuleMessages], "chat.message.created")
            try await append(otherChat, "b")
            seen(by: [chats], "chat.message.created")
            _ = try await changes.send(Chats.Rename.self, .init(id: chat, title: "Renamed"))
            seen(by: [chats, oneChat, oneModule], "chat.renamed")
            let thirdChat = try await changes.send(Chats.Create.self, .init(moduleId: module, title: "Also in one")).id
            seen(by: [chats, oneModule], "chat.created")
            try await append(thirdChat, "c")
            seen(by: [chats, oneModule, oneModuleMessages], "chat.message.created")
            _ = try await changes.send(Chats.Create.self, .init(title: "No module"))
            seen(by: [chats], "chat.created")
            _ = try await changes.send(Chats.Delete.self, .init(id: thirdChat))
            seen(by: [chats, oneModule], "chat.deleted")
            _ = try await changes.send(Modules.Delete.self, .init(id: otherModule))
            _ = try await changes.send(Modules.Delete.self, .init(id: module))
            seen(by: [oneModule], "module.deleted")

            let total = expected.values.map(\.count).reduce(0, +)
            var received: [String: [JSON]] = [:]
            for _ in 0..<total {
                let params = try await Self.nextEvent(subscriber)
                received[params["subscription"]?.stringValue ?? "?", default: []].append(params)
            }
            await Self.expectNothing(subscriber, within: .milliseconds(200), "more events than expected")
            for (id, topics) in expected {
                #expect((received[id] ?? []).map { $0["topic"]?.stringValue ?? "?" } == topics, "subscription \(id)")
            }
            // Filters in data: every event of the chat filter names that chat.
            #expect((received[oneChat.subscription] ?? []).allSatisfy { $0["data"]?["chatId"]?.stringValue == chat })

            // A replay with the same topics and filter selects the same events.
            let replays: [(Events.Subscribe.Result, [String]?, Events.Filter?)] = [
                (chats, ["chat.*"], nil), (oneChat, nil, .init(chatId: chat)), (oneModule, nil, .init(moduleId: module)),
                (oneModuleMessages, ["chat.message.*"], .init(moduleId: module)),
            ]
            for (subscription, topics, filter) in replays {
                let replayed = try await Self.replayAll(changes, since: subscription.after, topics: topics, filter: filter)
                #expect(
                    replayed == (received[subscription.subscription] ?? []).map(Self.withoutSubscription), "replay for \(subscription.subscription)")
            }
        }
    }

    @Test("another user's events never arrive, not even through a filter naming the other user's chat or module, and never replay")
    func otherUsersEvents() async throws {
        try await withInProcessDaemon { daemon in
            let alice = try await daemon.connect()
            let signedIn = try await Self.signIn(daemon, username: "bob")
            let bob = signedIn.connection
            let token = signedIn.token
            let aliceModule = try await alice.send(Modules.Create.self, .init(title: "Alice's")).id
            let aliceChat = try await alice.send(Chats.Create.self, .init(moduleId: aliceModule)).id

            let aliceWatch = try await daemon.connect()
            let aliceAll = try await aliceWatch.send(Events.Subscribe.self, .init(topics: ["*"]))
            let bobWatch = try await Self.authenticated(daemon, token: token)
            let bobAll = try await bobWatch.send(Events.Subscribe.self, .init(topics: ["*"], since: 0))
            // Filters naming alice's chat and module: accepted (an id is not checked, so its owner
            // is not revealed), and nothing ever matches.
            _ = try await bobWatch.send(Events.Subscribe.self, .init(topics: ["*"], filter: .init(chatId: aliceChat), since: 0))
            _ = try await bobWatch.send(Events.Subscribe.self, .init(topics: ["*"], filter: .init(moduleId: aliceModule), since: 0))

            // Both users change things, interleaved.
            let bobModule = try await bob.send(Modules.Create.self, .init(title: "Bob's")).id
            _ = try await alice.send(Chats.Messages.Append.self, .init(chatId: aliceChat, role: .user, content: "mine"))
            let bobChat = try await bob.send(Chats.Create.self, .init(moduleId: bobModule)).id
            _ = try await alice.send(Modules.Update.self, .init(id: aliceModule, title: "Still Alice's"))
            _ = try await bob.send(Chats.Messages.Append.self, .init(chatId: bobChat, role: .user, content: "his"))
            _ = try await alice.send(Modules.Delete.self, .init(id: aliceModule))
            _ = try await bob.send(Modules.Delete.self, .init(id: bobModule))

            let aliceReceived = try await Self.events(aliceWatch, until: Self.isDeletion(ofModule: aliceModule))
            let bobReceived = try await Self.events(bobWatch, until: Self.isDeletion(ofModule: bobModule))
            await Self.expectNothing(aliceWatch, within: .milliseconds(200))
            await Self.expectNothing(bobWatch, "bob's filters on alice's chat and module must match nothing")
            #expect(
                bobReceived.allSatisfy { $0["subscription"]?.stringValue == bobAll.subscription }, "only bob's unfiltered subscription has events")

            let aliceReplay = try await Self.replayAll(alice, since: aliceAll.after)
            #expect(aliceReceived.map(Self.withoutSubscription) == aliceReplay)
            let bobReplay = try await Self.replayAll(bob, since: 0)
            #expect(bobReceived.map(Self.withoutSubscription) == bobReplay)
            #expect(
                bobReplay.map { $0["topic"]?.stringValue } == [
                    "user.registered", "module.created", "chat.created", "chat.message.created", "module.deleted",
                ])
            // No event of one user is in the other's stream or replay.
            let aliceAllReplay = try await Self.replayAll(alice, since: 0)
            let aliceSeqs = Set(aliceAllReplay.compactMap { $0["seq"]?.intValue })
            let bobSeqs = Set(bobReplay.compactMap { $0["seq"]?.intValue })
            #expect(aliceSeqs.isDisjoint(with: bobSeqs), "alice \(aliceSeqs.sorted()), bob \(bobSeqs.sorted())")
            let aliceText = aliceReceived.description
            #expect(!aliceText.contains(bobModule) && !aliceText.contains(bobChat), "alice saw bob's ids: \(aliceText)")
            let bobText = (bobReceived + bobReplay).description
            #expect(!bobText.contains(aliceModule) && !bobText.contains(aliceChat), "bob saw alice's ids: \(bobText)")
            // The replay's filters, too: nothing of alice's through bob's filter.
            let filtered = try await bob.send(Events.Replay.self, .init(since: 0, filter: .init(chatId: aliceChat)))
            #expect(filtered.events.isEmpty, "\(filtered)")
        }
    }

    /// Each round, one connection appends (pipelined, with a module now and then) while a fresh
    /// connection subscribes with a random `since` at a random point of the burst, with random
    /// topics; another user appends meanwhile in some rounds. The subscriber must see exactly the
    /// caller's stored events after `since` that its topics take, each once, in seq order: the
    /// catch-up from the store and the live events meet with no gap and no duplicate.
    @Test(
        "catch-up then live while another connection publishes: each of many random interleavings sees exactly the stored events after since, once, in order"
    )
    func catchUpMeetsLiveEvents() async throws {
        let seed: UInt64 = 0x5EED_0005
        var random = SeededGenerator(seed: seed)
        // Topics, and whether they take module.created.
        let topicChoices: [([String], Bool)] = [
            (["*"], true), (["chat.*"], false), (["chat.message.created"], false), (["chat.message.created", "module.created"], true),
        ]
        try await withInProcessDaemon { daemon in
            let publisher = try await daemon.connect()
            let chatID = try await publisher.send(Chats.Create.self, .init(title: "Busy")).id
            let bob = try await Self.signIn(daemon, username: "bob").connection
            let bobChat = try await bob.send(Chats.Create.self, .init(title: "Bob's")).id
            var newest = Int64(try #require(try await Self.replayAll(publisher, since: 0).last?["seq"]?.intValue))

            for round in 0..<20 {
                let count = Int.random(in: 5...30, using: &random)
                let split = Int.random(in: 0...count, using: &random)
                let readBefore = Int.random(in: 0...split, using: &random)
                // Mostly a recent seq (a reconnecting client), sometimes any (a long catch-up).
                let since = Int64.random(in: (Int.random(in: 0..<5, using: &random) == 0 ? 0 : max(0, newest - 150))...newest, using: &random)
                let (topics, takesModules) = topicChoices.randomElement(using: &random)!
                let withModule = Bool.random(using: &random)
                let bobCount = Bool.random(using: &random) ? Int.random(in: 1...15, using: &random) : 0
                let context = """
                    seed \(seed) round \(round): \(count) appends\(withModule ? " and a module" : ""), \
                    subscribed after \(split) sent and \(readBefore) answered, since \(since), topics \(topics), \(bobCount) appends by bob
                    """
                do {
                    try await Self.sendAppends(publisher, chatID: chatID, range: 0..<split, tag: "r\(round)")
                    try await Self.sendAppends(bob, chatID: bobChat, range: 0..<bobCount, tag: "b\(round)")
                    var created = try await Self.readResults(publisher, count: readBefore)

                    let subscriber = try await daemon.connect()
                    let topicsJSON = try JSONFragment(encoding: topics).text
                    try await subscriber.write(
                        #"{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"topics":\#(topicsJSON),"since":\#(since)}}"# + "\n")
                    let reply = try JSON(parsing: try await subscriber.nextMessage())
                    #expect(reply["id"] == .integer(1) && reply["result"]?["after"]?.intValue == Int(since), "\(context): first message \(reply)")

                    try await Self.sendAppends(publisher, chatID: chatID, range: split..<count, tag: "r\(round)")
                    if withModule {
                        try await publisher.write(
                            #"{"jsonrpc":"2.0","id":"m\#(round)","method":"modules.create","params":{"title":"m\#(round)"}}"# + "\n")
                    }
                    created.formUnion(try await Self.readResults(publisher, count: count - readBefore + (withModule ? 1 : 0)))
                    _ = try await Self.readResults(bob, count: bobCount)

                    // Wait for every message of the round, and the module when the topics take it.
                    var awaited = Set(created.filter { $0.hasPrefix("msg_") })
                    if takesModules { awaited.formUnion(created.filter { $0.hasPrefix("mod_") }) }
                    let received = try await Self.events(
                        subscriber,
                        until: { event in
                            awaited.remove(event["data"]?["messageId"]?.stringValue ?? event["data"]?["moduleId"]?.stringValue ?? "")
                            return awaited.isEmpty
                        })
                    let seqs = received.compactMap { $0["seq"]?.intValue }
                    let last = try #require(seqs.last)
                    #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $0 < $1 }, "\(context): seqs not strictly increasing: \(seqs)")
                    #expect(seqs.allSatisfy { $0 > since }, "\(context): an event at or before since: \(seqs)")
                    let stored = try await Self.replayAll(publisher, since: since, topics: topics).filter { ($0["seq"]?.intValue ?? 0) <= last }
                    #expect(
                        seqs == stored.compactMap { $0["seq"]?.intValue },
                        "\(context): received \(seqs), stored \(stored.compactMap { $0["seq"]?.intValue })")
                    #expect(received.map(Self.withoutSubscription) == stored, "\(context): events differ from the stored ones")
                    #expect(!received.description.contains(bobChat), "\(context): bob's event arrived")
                    await subscriber.close()
                    newest = max(newest, Int64(last))
                } catch {
                    throw HarnessError("\(context): \(error)")
                }
            }
        }
    }

    // MARK: Ending subscriptions

    @Test("after the unsubscribe reply, changes produce no notification for that subscription; the connection's others go on")
    func unsubscribeStopsDelivery() async throws {
        try await withInProcessDaemon { daemon in
            let changes = try await daemon.connect()
            let since = try await Self.newestSeq(changes)  // the account's user.registered
            let subscriber = try await daemon.connect()
            let everything = try await subscriber.send(Events.Subscribe.self, .init(topics: ["*"], since: since))
            let modules = try await subscriber.send(Events.Subscribe.self, .init(topics: ["module.*"], since: since))
            _ = try await changes.send(Modules.Create.self, .init(title: "Seen twice"))
            let both = [try await Self.nextEvent(subscriber), try await Self.nextEvent(subscriber)].compactMap { $0["subscription"]?.stringValue }
            #expect(Set(both) == [everything.subscription, modules.subscription], "\(both)")

            // The exact reply (the subscriber's third request).
            let reply = try await subscriber.callRaw(Events.Unsubscribe.name, #"{"subscription":"\#(everything.subscription)"}"#)
            try expectReply(try JSON(parsing: reply), equals: #"{"jsonrpc":"2.0","id":3,"result":{"unsubscribed":true}}"#)
            _ = try await changes.send(Modules.Create.self, .init(title: "Seen once"))
            _ = try await changes.send(Chats.Create.self, .init(title: "Not seen"))
            let event = try await Self.nextEvent(subscriber)
            #expect(event["subscription"]?.stringValue == modules.subscription, "\(event)")
            #expect(event["data"]?["title"]?.stringValue == "Seen once", "\(event)")
            await Self.expectNothing(subscriber, within: .milliseconds(300), "the unsubscribed subscription delivered")

            // It is gone: a second unsubscribe does not find it.
            let again = await #expect(throws: RPCError.self) {
                try await subscriber.send(Events.Unsubscribe.self, .init(subscription: everything.subscription))
            }
            #expect(again?.code.rawValue == -32030, "\(String(describing: again))")
        }
    }

    // MARK: Errors

    @Test(
        "errors: unknown or no topics, a replay limit out of range, an unknown or another connection's subscription, too many subscriptions, no session"
    )
    func errors() async throws {
        try await withInProcessDaemon(configure: { $0.events.maxSubscriptionsPerConnection = 2 }) { daemon in
            let client = try await daemon.connect()
            // Raw params: the invalid values as a client would send them.
            func expectInvalid(_ method: String, _ params: String, field: String, sourceLocation: SourceLocation = #_sourceLocation) async {
                let error = await #expect(throws: RPCError.self, "\(method) \(params)", sourceLocation: sourceLocation) {
                    _ = try await client.call(method, params)
                }
                #expect(error?.code.rawValue == -32602, "\(method) \(params): \(String(describing: error))", sourceLocation: sourceLocation)
                #expect(
                    error?.dataValue?["field"]?.stringValue == field, "\(method) \(params): \(String(describing: error))",
                    sourceLocation: sourceLocation)
            }
            await expectInvalid("events.subscribe", #"{"topics":["module.renamed"]}"#, field: "topics[0]")
            await expectInvalid("events.subscribe", #"{"topics":["*","nothing.*"]}"#, field: "topics[1]")
            await expectInvalid("events.subscribe", #"{"topics":[]}"#, field: "topics")
            await expectInvalid("events.subscribe", #"{"topics":["*"],"since":-1}"#, field: "since")
            await expectInvalid("events.replay", #"{"since":0,"limit":0}"#, field: "limit")
            await expectInvalid("events.replay", #"{"since":0,"limit":1001}"#, field: "limit")
            await expectInvalid("events.replay", #"{"since":0,"topics":["chat.opened"]}"#, field: "topics[0]")
            await expectInvalid("events.replay", #"{"since":-5}"#, field: "since")
            await expectInvalid("audit.list", #"{"limit":201}"#, field: "limit")
            let missingParams = await #expect(throws: RPCError.self) { _ = try await client.call("events.subscribe", "{}") }
            #expect(missingParams?.code.rawValue == -32602, "\(String(describing: missingParams))")

            let unknown = try JSON(parsing: try await client.callRaw("events.unsubscribe", #"{"subscription":"sub_0000"}"#))
            try expectReply(unknown, equals: #"{"jsonrpc":"2.0","id":\#(unknown["id"]!),"error":{"code":-32030,"message":"Not found"}}"#)
            #expect(unknown["error"]?["data"] == .object(["kind": .string("subscription"), "id": .string("sub_0000")]), "\(unknown)")

            // Two subscriptions at most (the setting); a refused one leaves the others working, and
            // unsubscribing frees a place.
            let first = try await client.send(Events.Subscribe.self, .init(topics: ["module.*"]))
            _ = try await client.send(Events.Subscribe.self, .init(topics: ["chat.*"]))
            let third = await #expect(throws: RPCError.self) { try await client.send(Events.Subscribe.self, .init(topics: ["*"])) }
            #expect(third?.code.rawValue == -32041, "\(String(describing: third))")
            #expect(
                third?.dataValue == .object(["setting": .string("events.max_subscriptions_per_connection"), "limit": .number(2)]),
                "\(String(describing: third))")
            // Another connection has its own allowance, and cannot end this one's subscription.
            let other = try await daemon.connect()
            _ = try await other.send(Events.Subscribe.self, .init(topics: ["module.*"]))
            let foreign = await #expect(throws: RPCError.self) {
                try await other.send(Events.Unsubscribe.self, .init(subscription: first.subscription))
            }
            #expect(
                foreign?.code.rawValue == -32030 && foreign?.dataValue?["id"]?.stringValue == first.subscription, "\(String(describing: foreign))")
            _ = try await client.send(Modules.Create.self, .init(title: "Still subscribed"))
            #expect(try await Self.nextEvent(client)["subscription"]?.stringValue == first.subscription)
            #expect(try await Self.nextEvent(other)["topic"]?.stringValue == "module.created")
            _ = try await client.send(Events.Unsubscribe.self, .init(subscription: first.subscription))
            _ = try await client.send(Events.Subscribe.self, .init(topics: ["*"]))

            // A connection without a session (over the socket, the test process's uid is always
            // signed in, so this was unreachable there).
            let anonymous = try await daemon.connect(peer: nil)
            let unauthenticated = await #expect(throws: RPCError.self) { try await anonymous.send(Events.Subscribe.self, .init(topics: ["*"])) }
            #expect(unauthenticated?.code.rawValue == -32020, "\(String(describing: unauthenticated))")
        }
    }

    // MARK: In-process helpers

    /// `events.event` with its params as sent, to compare member for member with the items of
    /// `events.replay` (the typed params would drop members they do not declare).
    enum RawEvent: RPCNotification {
        static let name = EventsNotifications.Event.name
        static let summary = "events.event, its params untyped"
        typealias Params = JSONFragment
    }

    /// The params of the next `events.event` on `client`.
    static func nextEvent(_ client: InProcessClient) async throws -> JSON {
        try JSON(parsing: try await client.nextNotification(of: RawEvent.self).text)
    }

    /// The params of `events.event`s on `client` up to the first for which `stop` is true.
    static func events(_ client: InProcessClient, until stop: (JSON) -> Bool) async throws -> [JSON] {
        var received: [JSON] = []
        while true {
            let event = try await nextEvent(client)
            received.append(event)
            if stop(event) { return received }
        }
    }

    /// Whether an event is the deletion of module `id`. (A function: the same `&&` in a closure
    /// literal of the async test crashed the compiler's SendNonSendable pass, Swift 6.x.)
    static func isDeletion(ofModule id: String) -> (JSON) -> Bool {
        { $0["data"]?["moduleId"]?.stringValue == id && $0["topic"]?.stringValue == "module.deleted" }
    }

    /// Records an issue when a message arrives on `client` within `within`. An absence cannot be
    /// awaited: this waits on the wall clock, as the socket tests did (a late message is missed,
    /// never a false failure).
    static func expectNothing(
        _ client: InProcessClient, within: Duration = .milliseconds(100), _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        do {
            let message = try await client.nextMessage(timeout: within)
            Issue.record("unexpected message \(message) \(comment)", sourceLocation: sourceLocation)
        } catch InProcessClientError.timedOut {
        } catch {
            Issue.record("\(error) \(comment)", sourceLocation: sourceLocation)
        }
    }

    /// A second user (an untrusted uid), registered and logged in on one connection: that
    /// connection and the session's token (`authenticated` opens more connections as that user).
    static func signIn(_ daemon: InProcessDaemon, username: String, uid: UInt32 = 60_001) async throws -> (connection: InProcessClient, token: String)
    {
        let connection = try await daemon.connect(uid: uid)
        let credentials = Auth.Credentials(username: username, password: "correct horse")
        _ = try await connection.send(Auth.Register.self, credentials)
        let login = try await connection.send(Auth.Login.self, credentials)
        return (connection, login.token)
    }

    /// A new connection of `uid`, authenticated with `token`.
    static func authenticated(_ daemon: InProcessDaemon, token: String, uid: UInt32 = 60_001) async throws -> InProcessClient {
        let connection = try await daemon.connect(uid: uid)
        _ = try await connection.send(Auth.Authenticate.self, .init(token: token))
        return connection
    }

    /// Every stored event of the caller after `since` (all pages), as `events.replay` lists them.
    static func replayAll(_ client: InProcessClient, since: Int64, topics: [String]? = nil, filter: Events.Filter? = nil) async throws -> [JSON] {
        var events: [JSON] = []
        var since = since
        while true {
            let params = try JSONFragment(encoding: Events.Replay.Params(since: since, limit: 1000, topics: topics, filter: filter))
            let page = try JSON(parsing: try await client.call(Events.Replay.name, params.text).text)
            events += try #require(page["events"]?.arrayValue, "\(page)")
            since = Int64(try #require(page["lastSeq"]?.intValue, "\(page)"))
            guard page["hasMore"] == .bool(true) else { return events }
        }
    }

    /// The seq of the caller's newest stored event (0 when none).
    static func newestSeq(_ client: InProcessClient) async throws -> Int64 {
        Int64(try await replayAll(client, since: 0).last?["seq"]?.intValue ?? 0)
    }

    /// Writes one append per number in `range` to `chatID` at once (pipelined), without reading the replies.
    static func sendAppends(_ client: InProcessClient, chatID: String, range: Range<Int>, tag: String) async throws {
        if range.isEmpty { return }
        var burst = ""
        for n in range {
            burst +=
                #"{"jsonrpc":"2.0","id":"\#(tag)-\#(n)","method":"chats.messages.append","params":{"chatId":"\#(chatID)","role":"user","content":"\#(tag) \#(n)"}}"#
                + "\n"
        }
        try await client.write(burst)
    }

    /// Reads `count` replies (in any order); returns the ids of what they created.
    static func readResults(_ client: InProcessClient, count: Int) async throws -> Set<String> {
        var ids: Set<String> = []
        for _ in 0..<count {
            let reply = try JSON(parsing: try await client.nextMessage())
            ids.insert(try #require(reply["result"]?["id"]?.stringValue, "\(reply)"))
        }
        return ids
    }
}

/// What only the real binary shows: a client that stops reading (a real socket's buffers and
/// backpressure: the in-process channel takes every write at once), sockets closed with unread
/// events (the daemon's log and process), kill -9 between commit and dispatch, and retention at
/// start (restarts with an environment setting).
extension EventsTests {
    // MARK: Slow clients

    @Test(
        "a client that stops reading gets its events in order then one events.overflow at the last one; since: lastSeq resumes with no gap; others are unaffected"
    )
    func slowClientOverflows() throws {
        try withDaemon(environment: ["AGENTD_EVENTS_QUEUE_CAPACITY": "16"]) { daemon in
            let publisher = ClientConnection(try daemon.connect())
            let (chatID, leaf) = try Self.chain(publisher, length: 100)
            let since = try Self.newestSeq(publisher)  // so that no event of the chain can arrive
            let stalled = ClientConnection(try daemon.connect())
            let stalledSubscription = try stalled.subscribe(#"{"topics":["*"],"since":\#(since)}"#)
            let healthy = ClientConnection(try daemon.connect())
            let healthySubscription = try healthy.subscribe(#"{"topics":["chat.message.created"],"since":\#(since)}"#)

            // ~800 kB of events (24 forks of 100 messages): several times what the stalled client's
            // socket buffer and the server's write buffer hold. The healthy subscriber reads each
            // chunk of 200 messages before the next is published.
            var healthyReceived: [JSON] = []
            for _ in 0..<12 {
                try Self.sendForks(publisher.client, of: leaf, count: 2)
                _ = try Self.readResults(publisher.client, count: 2)
                var count = 0
                healthyReceived += try healthy.events(until: { _ in
                    count += 1
                    return count == 200
                })
            }
            // Other connections are served while one client is stuck.
            try expectReply(try daemon.connect().ping(id: 9), equals: #"{"jsonrpc":"2.0","id":9,"result":"pong"}"#)

            // The stalled client reads at last: events in order, then one overflow naming the last
            // one it got; the connection itself still answers (a ping sent before reading).
            try stalled.client.send(line: #"{"jsonrpc":"2.0","id":"late","method":"system.ping"}"#)
            var stalledReceived: [JSON] = []
            var overflow: JSON?
            while overflow == nil {
                let message = try stalled.client.readJSON()
                switch message["method"]?.stringValue {
                case "events.event": stalledReceived.append(try #require(message["params"]))
                case "events.overflow": overflow = message["params"]
                default:
                    Issue.record("unexpected message before the overflow: \(message)")
                    return
                }
            }
            try expectReply(try stalled.client.readJSON(), equals: #"{"jsonrpc":"2.0","id":"late","result":"pong"}"#)
            let lastSeq = try #require(overflow?["lastSeq"]?.intValue, "\(String(describing: overflow))")
            #expect(overflow?["subscription"]?.stringValue == stalledSubscription.id)
            #expect(
                stalledReceived.count >= 16 && stalledReceived.count < healthyReceived.count, "\(stalledReceived.count) events before the overflow")
            #expect(stalledReceived.last?["seq"]?.intValue == lastSeq, "lastSeq \(lastSeq), last event \(String(describing: stalledReceived.last))")
            let stored = try Self.replayAll(publisher, since: stalledSubscription.after)
            #expect(
                stalledReceived.map(Self.withoutSubscription) == stored.filter { ($0["seq"]?.intValue ?? 0) <= lastSeq }, "events before the overflow"
            )

            // Resubscribing from lastSeq delivers the rest, while this client reads.
            let resumed = try stalled.subscribe(#"{"topics":["*"],"since":\#(lastSeq)}"#)
            let lastStored = try #require(stored.last?["seq"])
            let rest = try stalled.events(until: { $0["seq"] == lastStored })
            #expect(rest.allSatisfy { $0["subscription"]?.stringValue == resumed.id })
            #expect(
                (stalledReceived + rest).map(Self.withoutSubscription) == stored, "before and after the overflow together: every stored event once")
            try stalled.expectNothing(within: .milliseconds(100))

            // The healthy subscriber got everything, in order, and its subscription is still on.
            let healthyExpected = stored.filter {
                $0["topic"]?.stringValue == "chat.message.created" && ($0["seq"]?.intValue ?? 0) > healthySubscription.after
            }
            #expect(healthyReceived.map(Self.withoutSubscription) == healthyExpected)
            _ = try publisher.result("chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":"one more"}"#)
            #expect(try healthy.nextNotification()["params"]?["subscription"]?.stringValue == healthySubscription.id)
            #expect(try stalled.nextNotification()["params"]?["subscription"]?.stringValue == resumed.id)
        }
    }

    /// Regression: the catch-up sent pages of 500 stored events at once and took "drained" before
    /// its writes were flushed, so with a queue smaller than a page a client that reads was cut
    /// off with `events.overflow` in the middle of its catch-up.
    @Test("a client that reads while catching up on many more stored events than its queue holds is never cut off")
    func catchUpLongerThanTheQueue() throws {
        try withDaemon(environment: ["AGENTD_EVENTS_QUEUE_CAPACITY": "16"]) { daemon in
            let publisher = ClientConnection(try daemon.connect())
            let (_, leaf) = try Self.chain(publisher, length: 100)
            try Self.sendForks(publisher.client, of: leaf, count: 20)  // ~2,100 events in all: 5 pages
            _ = try Self.readResults(publisher.client, count: 20)
            let stored = try Self.replayAll(publisher, since: 0)
            let last = try #require(stored.last?["seq"])
            for _ in 0..<2 {
                let subscriber = ClientConnection(try daemon.connect())
                _ = try subscriber.subscribe(#"{"topics":["*"],"since":0}"#)
                let received = try subscriber.events(until: { $0["seq"] == last })
                #expect(received.map(Self.withoutSubscription) == stored)
            }
        }
    }

    @Test("closing a subscriber mid-stream, with unread events, ends its subscriptions: the daemon keeps serving everyone else, without an error")
    func closeMidStream() throws {
        try withDaemon { daemon in
            let publisher = ClientConnection(try daemon.connect())
            let (_, leaf) = try Self.chain(publisher, length: 100)
            let watcher = ClientConnection(try daemon.connect())
            let watching = try watcher.subscribe(#"{"topics":["chat.message.created"],"since":\#(try Self.newestSeq(publisher))}"#)
            var closers: [ClientConnection] = []
            for _ in 0..<4 {
                let closer = ClientConnection(try daemon.connect())
                _ = try closer.subscribe(#"{"topics":["*"]}"#)
                _ = try closer.subscribe(#"{"topics":["chat.*"],"since":0}"#)
                closers.append(closer)
            }

            try Self.sendForks(publisher.client, of: leaf, count: 6)  // 600 messages
            // Each closer reads a few events, then goes away with the rest unread.
            for (index, closer) in closers.enumerated() {
                for _ in 0..<(index * 5) { _ = try closer.nextNotification() }
                closer.client.close()
            }
            _ = try Self.readResults(publisher.client, count: 6)
            var count = 0
            let received = try watcher.events(until: { _ in
                count += 1
                return count == 600
            })
            #expect(
                received.map(Self.withoutSubscription)
                    == (try Self.replayAll(publisher, since: watching.after, extra: #","topics":["chat.message.created"]"#)))

            // Still serving: a new subscription gets the next change, the others answer.
            let fresh = ClientConnection(try daemon.connect())
            _ = try fresh.subscribe(#"{"topics":["module.*"]}"#)
            _ = try publisher.result("modules.create", #"{"title":"After"}"#)
            #expect(try fresh.nextNotification()["params"]?["data"]?["title"]?.stringValue == "After")
            try expectReply(try daemon.connect().ping(id: 5), equals: #"{"jsonrpc":"2.0","id":5,"result":"pong"}"#)
            #expect(daemon.isRunning)
            // A log line is "<time> <level> <label>: …".
            let errors = daemon.stderr.split(separator: "\n").filter { ["error", "critical"].contains($0.split(separator: " ").dropFirst().first) }
            #expect(errors.isEmpty, "the daemon logged errors: \(errors)")
        }
    }

    // MARK: Crash between commit and dispatch

    @Test("events committed but never dispatched (kill -9) reach the audit log after a restart, exactly once across restarts")
    func crashBetweenCommitAndDispatch() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = "\(directory.path)/agentd.sock"
        let database = ["--database", "\(directory.path)/agentd.sqlite"]

        let moduleID: String
        do {
            let held = try DaemonProcess(socketPath: socket, arguments: database + ["--test-hold-event-consumers"])
            defer { held.kill() }
            let client = ClientConnection(try held.connect())
            moduleID = try #require(try client.result("modules.create", #"{"title":"Doomed"}"#)["id"]?.stringValue)
            _ = try client.result("modules.delete", #"{"id":"\#(moduleID)"}"#)
            // Committed (the replay reads them) but not handled: the audit log is empty.
            #expect(try Self.replayAll(client, since: 0).map { $0["topic"]?.stringValue } == ["user.registered", "module.created", "module.deleted"])
            #expect(try client.result("audit.list")["items"] == .array([]))
            held.kill()
        }

        // Restarted without the flag: the consumer catches up from its cursor.
        let entries: [JSON]
        do {
            let restarted = try DaemonProcess(socketPath: socket, arguments: database)
            defer { restarted.kill() }
            let client = ClientConnection(try restarted.connect())
            entries = try Self.waitForAudit(client, count: 2)
            #expect(entries.map { $0["action"]?.stringValue } == ["module.deleted", "user.registered"], "\(entries)")
            #expect(entries.first?["data"] == .object(["moduleId": .string(moduleID)]), "\(entries)")
            let replay = try Self.replayAll(client, since: 0)
            #expect(replay.map { $0["topic"]?.stringValue } == ["user.registered", "module.created", "module.deleted"])
            #expect(entries.map { $0["eventSeq"] } == [replay[2]["seq"], replay[0]["seq"]], "audit entries keep their events' seqs")
            restarted.kill()
        }

        // Another restart (after kill -9 again): nothing is recorded twice. A new audited change,
        // handled after everything before it, shows the consumer has caught up.
        let again = try DaemonProcess(socketPath: socket, arguments: database)
        defer { again.kill() }
        let client = ClientConnection(try again.connect())
        let second = try #require(try client.result("modules.create", #"{"title":"Also doomed"}"#)["id"]?.stringValue)
        _ = try client.result("modules.delete", #"{"id":"\#(second)"}"#)
        let after = try Self.waitForAudit(client, count: 3)
        #expect(after.first?["data"] == .object(["moduleId": .string(second)]), "\(after)")
        #expect(Array(after.dropFirst()) == entries, "the earlier entries, once each: \(after)")
    }

    // MARK: Retention

    /// Regression: retention kept every event after the audit consumer's cursor, which moves only
    /// over the topics it handles, so once the newest audited event was old (no account created
    /// or anything deleted since) nothing after it was ever pruned.
    @Test("retention prunes all but the newest events, also past the audit log's last one; since before them is refused with -32040")
    func retention() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = "\(directory.path)/agentd.sock"
        let database = ["--database", "\(directory.path)/agentd.sqlite"]
        do {
            let daemon = try DaemonProcess(socketPath: socket, arguments: database)
            defer { daemon.kill() }
            let client = ClientConnection(try daemon.connect())
            _ = try Self.waitForAudit(client, count: 1)  // user.registered, seq 1, handled
            for n in 0..<5 { _ = try client.result("modules.create", #"{"title":"m\#(n)"}"#) }  // seqs 2…6, not audited
            daemon.terminate()
            #expect(try daemon.waitForExit(timeout: .seconds(20)) == .exited(0))
        }

        // Keep the newest 2: retention runs at start and prunes through seq 4. (A new interval:
        // the first daemon ran this 600 s slot's events.prune job already, and a slot's job runs once.)
        let daemon = try DaemonProcess(
            socketPath: socket, arguments: database,
            environment: ["AGENTD_EVENTS_RETENTION_COUNT": "2", "AGENTD_EVENTS_PRUNE_INTERVAL_SECONDS": "3600"])
        defer { daemon.kill() }
        try daemon.waitForLog(containing: "pruned events")
        let client = ClientConnection(try daemon.connect())
        let expired = try client.call("events.replay", #"{"since":3}"#)
        #expect(expired.errorCode == -32040, "\(expired)")
        #expect(expired["error"]?["data"] == .object(["since": .integer(3), "prunedThrough": .integer(4)]), "\(expired)")
        #expect(try client.call("events.subscribe", #"{"topics":["*"],"since":0}"#).errorCode == -32040)
        let kept = try client.result("events.replay", #"{"since":4}"#)
        #expect(kept["events"]?.arrayValue?.map { $0["seq"]?.intValue } == [5, 6], "\(kept)")
        _ = try client.subscribe(#"{"topics":["*"],"since":4}"#)
        #expect(try client.events(until: { $0["seq"]?.intValue == 6 }).map { $0["seq"]?.intValue } == [5, 6])
        // The audit log keeps its own rows.
        #expect(try client.result("audit.list")["items"]?.arrayValue?.map { $0["action"]?.stringValue } == ["user.registered"])
    }

    // MARK: Socket helpers

    /// Every stored event of the caller after `since` (all pages); `extra` adds members to the
    /// params (`,"topics":[…]`).
    static func replayAll(_ connection: ClientConnection, since: Int64, extra: String = "") throws -> [JSON] {
        var events: [JSON] = []
        var since = since
        while true {
            let page = try connection.result("events.replay", #"{"since":\#(since),"limit":1000\#(extra)}"#)
            events += try #require(page["events"]?.arrayValue, "\(page)")
            since = Int64(try #require(page["lastSeq"]?.intValue, "\(page)"))
            guard page["hasMore"] == .bool(true) else { return events }
        }
    }

    /// The seq of the caller's newest stored event (0 when none).
    static func newestSeq(_ connection: ClientConnection) throws -> Int64 {
        Int64(try replayAll(connection, since: 0).last?["seq"]?.intValue ?? 0)
    }

    /// Polls `audit.list` until it has `count` entries (with a deadline: the consumer runs on its
    /// own), and returns them.
    static func waitForAudit(_ connection: ClientConnection, count: Int, timeout: Duration = .seconds(10)) throws -> [JSON] {
        let deadline = Deadline(timeout)
        while true {
            let items = try #require(try connection.result("audit.list")["items"]?.arrayValue)
            if items.count >= count || deadline.hasPassed {
                #expect(items.count == count, "audit.list: \(items)")
                return items
            }
        }
    }

    /// Sends one append per number in `range` to `chatID` in one write, without reading the replies.
    static func sendAppends(_ client: RPCTestClient, chatID: String, range: Range<Int>, tag: String) throws {
        if range.isEmpty { return }
        var burst = ""
        for n in range {
            burst +=
                #"{"jsonrpc":"2.0","id":"\#(tag)-\#(n)","method":"chats.messages.append","params":{"chatId":"\#(chatID)","role":"user","content":"\#(tag) \#(n)"}}"#
                + "\n"
        }
        try client.send(raw: burst)
    }

    /// A new chat holding one chain of `length` messages: its id and the last message's.
    /// `sendForks` of that message then publishes `length + 1` events per call, in one transaction.
    static func chain(_ connection: ClientConnection, length: Int) throws -> (chatID: String, leaf: String) {
        let chatID = try #require(try connection.result("chats.create", #"{"title":"Chain"}"#)["id"]?.stringValue)
        // Pipelined appends to one chat form one chain (each goes under the active leaf).
        try sendAppends(connection.client, chatID: chatID, range: 0..<length, tag: "chain")
        _ = try readResults(connection.client, count: length)
        let chat = try connection.result("chats.get", #"{"id":"\#(chatID)"}"#)
        #expect(chat["messageCount"]?.intValue == length, "\(chat)")
        return (chatID, try #require(chat["activeMessageId"]?.stringValue, "\(chat)"))
    }

    /// Sends `count` forks of `messageID` in one write, without reading the replies.
    static func sendForks(_ client: RPCTestClient, of messageID: String, count: Int) throws {
        let fork = #"{"jsonrpc":"2.0","id":"fork","method":"chats.fork","params":{"messageId":"\#(messageID)"}}"# + "\n"
        try client.send(raw: String(repeating: fork, count: count))
    }

    /// Reads `count` replies (in any order); returns the ids of what they created.
    static func readResults(_ client: RPCTestClient, count: Int) throws -> Set<String> {
        var ids: Set<String> = []
        for _ in 0..<count {
            let reply = try client.readJSON()
            ids.insert(try #require(reply["result"]?["id"]?.stringValue, "\(reply)"))
        }
        return ids
    }

    /// An `events.event`'s params as `events.replay` lists the event.
    static func withoutSubscription(_ params: JSON) -> JSON {
        guard case .object(var members) = params else { return params }
        members["subscription"] = nil
        return .object(members)
    }
}

/// SplitMix64: a seeded generator, so that a failing round can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
