import Foundation
import Testing

/// The event bus over the socket, with the real binary: subscriptions (topics, filters, catch-up
/// with `since`), replays, other users' events, a client that stops reading, unsubscribing and
/// closing, a crash between a change's commit and its dispatch to the audit log, and the errors.
///
/// The test process's uid is the daemon's own, so a fresh connection acts as its linked account;
/// a second user registers and authenticates with a token (`signIn`).
@Suite("Events over the socket", .blockingIO, .timeLimit(.minutes(2)))
struct EventsTests {
    // MARK: Subscriptions

    @Test("changes made on another connection arrive after the subscribe reply, in seq order, with their topics and data")
    func subscribeToEverything() throws {
        try withDaemon { daemon in
            let changes = ClientConnection(try daemon.connect())
            _ = try changes.result("modules.create", #"{"title":"Before"}"#)
            let stored = try Self.replayAll(changes, since: 0)
            let newestBefore = try #require(stored.last?["seq"]?.intValue)

            // The reply is the first line: no event may come before the client knows the id.
            let raw = try daemon.connect()
            try raw.send(line: #"{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"topics":["*"]}}"#)
            let reply = try raw.readJSON()
            #expect(reply["id"] == .integer(1), "first line after subscribing: \(reply)")
            let subscription = try #require(reply["result"]?["subscription"]?.stringValue, "\(reply)")
            let after = try #require(reply["result"]?["after"]?.intValue, "\(reply)")
            #expect((0...newestBefore).contains(after), "after \(after), newest stored \(newestBefore)")
            let subscriber = ClientConnection(raw)

            let module = try changes.result("modules.create", #"{"title":"Plans","tags":["a"]}"#)
            let moduleID = try #require(module["id"]?.stringValue)
            _ = try changes.result("modules.update", #"{"id":"\#(moduleID)","title":"Plans, v2"}"#)
            let chat = try changes.result("chats.create", #"{"moduleId":"\#(moduleID)","title":"Talk"}"#)
            let chatID = try #require(chat["id"]?.stringValue)
            let message = try changes.result("chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":"hello"}"#)
            let messageID = try #require(message["id"]?.stringValue)
            _ = try changes.result("modules.delete", #"{"id":"\#(moduleID)"}"#)

            let received = try subscriber.events(until: { $0["topic"]?.stringValue == "module.deleted" })
            try subscriber.expectNothing(within: .milliseconds(100))
            for event in received { #expect(event["subscription"]?.stringValue == subscription, "event: \(event)") }
            // Exactly what the store holds after `after`, in seq order (the notification is the
            // replay item plus its subscription).
            #expect(received.map(Self.withoutSubscription) == (try Self.replayAll(changes, since: Int64(after))))
            let seqs = received.compactMap { $0["seq"]?.intValue }
            #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count && seqs.allSatisfy { $0 > after }, "seqs \(seqs) after \(after)")

            let mine = Array(received.suffix(5))
            #expect(mine.map { $0["topic"]?.stringValue } == ["module.created", "module.updated", "chat.created", "chat.message.created", "module.deleted"])
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

    @Test("topic patterns and filters: chat.* takes chat and message events only; filter.chatId one chat; filter.moduleId its module and that module's chats")
    func patternsAndFilters() throws {
        try withDaemon { daemon in
            let changes = ClientConnection(try daemon.connect())
            let module = try #require(try changes.result("modules.create", #"{"title":"One"}"#)["id"]?.stringValue)
            let otherModule = try #require(try changes.result("modules.create", #"{"title":"Two"}"#)["id"]?.stringValue)
            let chat = try #require(try changes.result("chats.create", #"{"moduleId":"\#(module)","title":"In one"}"#)["id"]?.stringValue)
            let otherChat = try #require(try changes.result("chats.create", #"{"moduleId":"\#(otherModule)","title":"In two"}"#)["id"]?.stringValue)

            // From the newest stored event, so that none of the set-up's events can arrive.
            let since = try Self.newestSeq(changes)
            let subscriber = ClientConnection(try daemon.connect())
            let chats = try subscriber.subscribe(#"{"topics":["chat.*"],"since":\#(since)}"#)
            let oneChat = try subscriber.subscribe(#"{"topics":["*"],"filter":{"chatId":"\#(chat)"},"since":\#(since)}"#)
            let oneModule = try subscriber.subscribe(#"{"topics":["*"],"filter":{"moduleId":"\#(module)"},"since":\#(since)}"#)
            let oneModuleMessages = try subscriber.subscribe(#"{"topics":["chat.message.*"],"filter":{"moduleId":"\#(module)"},"since":\#(since)}"#)

            // Each change, and the subscriptions that must see it.
            var expected: [String: [String]] = [chats.id: [], oneChat.id: [], oneModule.id: [], oneModuleMessages.id: []]
            func change(_ method: String, _ params: String, seenBy: [String], topic: String) throws {
                _ = try changes.result(method, params)
                for id in seenBy { expected[id]!.append(topic) }
            }
            try change("modules.update", #"{"id":"\#(module)","title":"One, v2"}"#, seenBy: [oneModule.id], topic: "module.updated")
            try change("modules.update", #"{"id":"\#(otherModule)","title":"Two, v2"}"#, seenBy: [], topic: "module.updated")
            try change("chats.messages.append", #"{"chatId":"\#(chat)","role":"user","content":"a"}"#,
                       seenBy: [chats.id, oneChat.id, oneModule.id, oneModuleMessages.id], topic: "chat.message.created")
            try change("chats.messages.append", #"{"chatId":"\#(otherChat)","role":"user","content":"b"}"#, seenBy: [chats.id], topic: "chat.message.created")
            try change("chats.rename", #"{"id":"\#(chat)","title":"Renamed"}"#, seenBy: [chats.id, oneChat.id, oneModule.id], topic: "chat.renamed")
            let third = try changes.result("chats.create", #"{"moduleId":"\#(module)","title":"Also in one"}"#)
            let thirdChat = try #require(third["id"]?.stringValue)
            for id in [chats.id, oneModule.id] { expected[id]!.append("chat.created") }
            try change("chats.messages.append", #"{"chatId":"\#(thirdChat)","role":"user","content":"c"}"#,
                       seenBy: [chats.id, oneModule.id, oneModuleMessages.id], topic: "chat.message.created")
            try change("chats.create", #"{"title":"No module"}"#, seenBy: [chats.id], topic: "chat.created")
            try change("chats.delete", #"{"id":"\#(thirdChat)"}"#, seenBy: [chats.id, oneModule.id], topic: "chat.deleted")
            try change("modules.delete", #"{"id":"\#(otherModule)"}"#, seenBy: [], topic: "module.deleted")
            try change("modules.delete", #"{"id":"\#(module)"}"#, seenBy: [oneModule.id], topic: "module.deleted")

            let total = expected.values.map(\.count).reduce(0, +)
            var received: [String: [JSON]] = [:]
            for _ in 0..<total {
                let notification = try subscriber.nextNotification()
                let params = try #require(notification["params"], "\(notification)")
                received[params["subscription"]?.stringValue ?? "?", default: []].append(params)
            }
            try subscriber.expectNothing(within: .milliseconds(200), "more events than expected")
            for (id, topics) in expected {
                #expect((received[id] ?? []).map { $0["topic"]?.stringValue ?? "?" } == topics, "subscription \(id)")
            }
            // Filters in data: every event of the chat filter names that chat.
            #expect((received[oneChat.id] ?? []).allSatisfy { $0["data"]?["chatId"]?.stringValue == chat })

            // A replay with the same topics and filter selects the same events.
            let replays = [
                chats.id: #","topics":["chat.*"]"#, oneChat.id: #","filter":{"chatId":"\#(chat)"}"#,
                oneModule.id: #","filter":{"moduleId":"\#(module)"}"#,
                oneModuleMessages.id: #","topics":["chat.message.*"],"filter":{"moduleId":"\#(module)"}"#,
            ]
            for (id, extra) in replays {
                let after = [chats, oneChat, oneModule, oneModuleMessages].first { $0.id == id }!.after
                #expect(try Self.replayAll(changes, since: after, extra: extra) == (received[id] ?? []).map(Self.withoutSubscription), "replay for \(id)")
            }
        }
    }

    @Test("another user's events never arrive, not even through a filter naming the other user's chat or module, and never replay")
    func otherUsersEvents() throws {
        try withDaemon { daemon in
            let alice = ClientConnection(try daemon.connect())
            let (bob, token) = try Self.signIn(daemon, username: "bob")
            let aliceModule = try #require(try alice.result("modules.create", #"{"title":"Alice's"}"#)["id"]?.stringValue)
            let aliceChat = try #require(try alice.result("chats.create", #"{"moduleId":"\#(aliceModule)"}"#)["id"]?.stringValue)

            let aliceWatch = ClientConnection(try daemon.connect())
            let aliceAll = try aliceWatch.subscribe(#"{"topics":["*"]}"#)
            let bobWatch = try Self.authenticated(daemon, token: token)
            let bobAll = try bobWatch.subscribe(#"{"topics":["*"],"since":0}"#)
            // Filters naming alice's chat and module: accepted (an id is not checked, so its owner
            // is not revealed), and nothing ever matches.
            _ = try bobWatch.subscribe(#"{"topics":["*"],"filter":{"chatId":"\#(aliceChat)"},"since":0}"#)
            _ = try bobWatch.subscribe(#"{"topics":["*"],"filter":{"moduleId":"\#(aliceModule)"},"since":0}"#)

            // Both users change things, interleaved.
            let bobModule = try #require(try bob.result("modules.create", #"{"title":"Bob's"}"#)["id"]?.stringValue)
            _ = try alice.result("chats.messages.append", #"{"chatId":"\#(aliceChat)","role":"user","content":"mine"}"#)
            let bobChat = try #require(try bob.result("chats.create", #"{"moduleId":"\#(bobModule)"}"#)["id"]?.stringValue)
            _ = try alice.result("modules.update", #"{"id":"\#(aliceModule)","title":"Still Alice's"}"#)
            _ = try bob.result("chats.messages.append", #"{"chatId":"\#(bobChat)","role":"user","content":"his"}"#)
            _ = try alice.result("modules.delete", #"{"id":"\#(aliceModule)"}"#)
            _ = try bob.result("modules.delete", #"{"id":"\#(bobModule)"}"#)

            let aliceReceived = try aliceWatch.events(until: { $0["data"]?["moduleId"]?.stringValue == aliceModule && $0["topic"]?.stringValue == "module.deleted" })
            let bobReceived = try bobWatch.events(until: { $0["data"]?["moduleId"]?.stringValue == bobModule && $0["topic"]?.stringValue == "module.deleted" })
            try aliceWatch.expectNothing(within: .milliseconds(200))
            try bobWatch.expectNothing(within: .milliseconds(100), "bob's filters on alice's chat and module must match nothing")
            #expect(bobReceived.allSatisfy { $0["subscription"]?.stringValue == bobAll.id }, "only bob's unfiltered subscription has events")

            #expect(aliceReceived.map(Self.withoutSubscription) == (try Self.replayAll(alice, since: aliceAll.after)))
            let bobReplay = try Self.replayAll(bob, since: 0)
            #expect(bobReceived.map(Self.withoutSubscription) == bobReplay)
            #expect(bobReplay.map { $0["topic"]?.stringValue } == ["user.registered", "module.created", "chat.created", "chat.message.created", "module.deleted"])
            // No event of one user is in the other's stream or replay.
            let aliceSeqs = Set(try Self.replayAll(alice, since: 0).compactMap { $0["seq"]?.intValue })
            let bobSeqs = Set(bobReplay.compactMap { $0["seq"]?.intValue })
            #expect(aliceSeqs.isDisjoint(with: bobSeqs), "alice \(aliceSeqs.sorted()), bob \(bobSeqs.sorted())")
            let aliceText = aliceReceived.description
            #expect(!aliceText.contains(bobModule) && !aliceText.contains(bobChat), "alice saw bob's ids: \(aliceText)")
            let bobText = (bobReceived + bobReplay).description
            #expect(!bobText.contains(aliceModule) && !bobText.contains(aliceChat), "bob saw alice's ids: \(bobText)")
            // The replay's filters, too: nothing of alice's through bob's filter.
            let filtered = try bob.result("events.replay", #"{"since":0,"filter":{"chatId":"\#(aliceChat)"}}"#)
            #expect(filtered["events"] == .array([]), "\(filtered)")
        }
    }

    /// Each round, one connection appends (pipelined, with a module now and then) while a fresh
    /// connection subscribes with a random `since` at a random point of the burst, with random
    /// topics; another user appends meanwhile in some rounds. The subscriber must see exactly the
    /// caller's stored events after `since` that its topics take, each once, in seq order: the
    /// catch-up from the store and the live events meet with no gap and no duplicate.
    @Test("catch-up then live while another connection publishes: each of many random interleavings sees exactly the stored events after since, once, in order")
    func catchUpMeetsLiveEvents() throws {
        let seed: UInt64 = 0x5EED_0005
        var random = SeededGenerator(seed: seed)
        // Topics, and whether they take module.created.
        let topicChoices = [(#"["*"]"#, true), (#"["chat.*"]"#, false), (#"["chat.message.created"]"#, false), (#"["chat.message.created","module.created"]"#, true)]
        try withDaemon { daemon in
            let publisher = ClientConnection(try daemon.connect())
            let chatID = try #require(try publisher.result("chats.create", #"{"title":"Busy"}"#)["id"]?.stringValue)
            let bob = try Self.signIn(daemon, username: "bob").connection
            let bobChat = try #require(try bob.result("chats.create", #"{"title":"Bob's"}"#)["id"]?.stringValue)
            var newest = Int64(try #require(try Self.replayAll(publisher, since: 0).last?["seq"]?.intValue))

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
                    seed \(seed) round \(round): \(count) appends\(withModule ? " and a module" : ""), subscribed after \(split) sent and \(readBefore) \
                    answered, since \(since), topics \(topics), \(bobCount) appends by bob
                    """
                do {
                    try Self.sendAppends(publisher.client, chatID: chatID, range: 0..<split, tag: "r\(round)")
                    try Self.sendAppends(bob.client, chatID: bobChat, range: 0..<bobCount, tag: "b\(round)")
                    var created = try Self.readResults(publisher.client, count: readBefore)

                    let raw = try daemon.connect()
                    try raw.send(line: #"{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"topics":\#(topics),"since":\#(since)}}"#)
                    let reply = try raw.readJSON()
                    #expect(reply["id"] == .integer(1) && reply["result"]?["after"]?.intValue == Int(since), "\(context): first line \(reply)")

                    try Self.sendAppends(publisher.client, chatID: chatID, range: split..<count, tag: "r\(round)")
                    if withModule {
                        try publisher.client.send(line: #"{"jsonrpc":"2.0","id":"m\#(round)","method":"modules.create","params":{"title":"m\#(round)"}}"#)
                    }
                    created.formUnion(try Self.readResults(publisher.client, count: count - readBefore + (withModule ? 1 : 0)))
                    _ = try Self.readResults(bob.client, count: bobCount)

                    // Wait for every message of the round, and the module when the topics take it.
                    var awaited = Set(created.filter { $0.hasPrefix("msg_") })
                    if takesModules { awaited.formUnion(created.filter { $0.hasPrefix("mod_") }) }
                    let subscriber = ClientConnection(raw)
                    let received = try subscriber.events(until: { event in
                        awaited.remove(event["data"]?["messageId"]?.stringValue ?? event["data"]?["moduleId"]?.stringValue ?? "")
                        return awaited.isEmpty
                    })
                    let seqs = received.compactMap { $0["seq"]?.intValue }
                    let last = try #require(seqs.last)
                    #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $0 < $1 }, "\(context): seqs not strictly increasing: \(seqs)")
                    #expect(seqs.allSatisfy { $0 > since }, "\(context): an event at or before since: \(seqs)")
                    let stored = try Self.replayAll(publisher, since: since, extra: #","topics":\#(topics)"#).filter { ($0["seq"]?.intValue ?? 0) <= last }
                    #expect(seqs == stored.compactMap { $0["seq"]?.intValue }, "\(context): received \(seqs), stored \(stored.compactMap { $0["seq"]?.intValue })")
                    #expect(received.map(Self.withoutSubscription) == stored, "\(context): events differ from the stored ones")
                    #expect(!received.description.contains(bobChat), "\(context): bob's event arrived")
                    raw.close()
                    newest = max(newest, Int64(last))
                } catch {
                    throw HarnessError("\(context): \(error)")
                }
            }
        }
    }

    // MARK: Slow clients

    @Test("a client that stops reading gets its events in order then one events.overflow at the last one; since: lastSeq resumes with no gap; others are unaffected")
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
                default: Issue.record("unexpected message before the overflow: \(message)"); return
                }
            }
            try expectReply(try stalled.client.readJSON(), equals: #"{"jsonrpc":"2.0","id":"late","result":"pong"}"#)
            let lastSeq = try #require(overflow?["lastSeq"]?.intValue, "\(String(describing: overflow))")
            #expect(overflow?["subscription"]?.stringValue == stalledSubscription.id)
            #expect(stalledReceived.count >= 16 && stalledReceived.count < healthyReceived.count, "\(stalledReceived.count) events before the overflow")
            #expect(stalledReceived.last?["seq"]?.intValue == lastSeq, "lastSeq \(lastSeq), last event \(String(describing: stalledReceived.last))")
            let stored = try Self.replayAll(publisher, since: stalledSubscription.after)
            #expect(stalledReceived.map(Self.withoutSubscription) == stored.filter { ($0["seq"]?.intValue ?? 0) <= lastSeq }, "events before the overflow")

            // Resubscribing from lastSeq delivers the rest, while this client reads.
            let resumed = try stalled.subscribe(#"{"topics":["*"],"since":\#(lastSeq)}"#)
            let lastStored = try #require(stored.last?["seq"])
            let rest = try stalled.events(until: { $0["seq"] == lastStored })
            #expect(rest.allSatisfy { $0["subscription"]?.stringValue == resumed.id })
            #expect((stalledReceived + rest).map(Self.withoutSubscription) == stored, "before and after the overflow together: every stored event once")
            try stalled.expectNothing(within: .milliseconds(100))

            // The healthy subscriber got everything, in order, and its subscription is still on.
            let healthyExpected = stored.filter { $0["topic"]?.stringValue == "chat.message.created" && ($0["seq"]?.intValue ?? 0) > healthySubscription.after }
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

    // MARK: Ending subscriptions

    @Test("after the unsubscribe reply, changes produce no notification for that subscription; the connection's others go on")
    func unsubscribeStopsDelivery() throws {
        try withDaemon { daemon in
            let changes = ClientConnection(try daemon.connect())
            let since = try Self.newestSeq(changes)  // the account's user.registered
            let subscriber = ClientConnection(try daemon.connect())
            let everything = try subscriber.subscribe(#"{"topics":["*"],"since":\#(since)}"#)
            let modules = try subscriber.subscribe(#"{"topics":["module.*"],"since":\#(since)}"#)
            _ = try changes.result("modules.create", #"{"title":"Seen twice"}"#)
            let both = [try subscriber.nextNotification(), try subscriber.nextNotification()].compactMap { $0["params"]?["subscription"]?.stringValue }
            #expect(Set(both) == [everything.id, modules.id], "\(both)")

            let reply = try subscriber.call("events.unsubscribe", #"{"subscription":"\#(everything.id)"}"#)
            try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":3,"result":{"unsubscribed":true}}"#)
            _ = try changes.result("modules.create", #"{"title":"Seen once"}"#)
            _ = try changes.result("chats.create", #"{"title":"Not seen"}"#)
            let event = try subscriber.nextNotification()
            #expect(event["params"]?["subscription"]?.stringValue == modules.id, "\(event)")
            #expect(event["params"]?["data"]?["title"]?.stringValue == "Seen once", "\(event)")
            try subscriber.expectNothing(within: .milliseconds(300), "the unsubscribed subscription delivered")

            // It is gone: a second unsubscribe does not find it.
            let again = try subscriber.call("events.unsubscribe", #"{"subscription":"\#(everything.id)"}"#)
            #expect(again.errorCode == -32030, "\(again)")
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
            #expect(received.map(Self.withoutSubscription) == (try Self.replayAll(publisher, since: watching.after, extra: #","topics":["chat.message.created"]"#)))

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

        // Keep the newest 2: retention runs at start and prunes through seq 4.
        let daemon = try DaemonProcess(socketPath: socket, arguments: database, environment: ["AGENTD_EVENTS_RETENTION_COUNT": "2"])
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

    // MARK: Errors

    @Test("errors: unknown or no topics, a replay limit out of range, an unknown or another connection's subscription, too many subscriptions")
    func errors() throws {
        try withDaemon(environment: ["AGENTD_EVENTS_MAX_SUBSCRIPTIONS_PER_CONNECTION": "2"]) { daemon in
            let client = ClientConnection(try daemon.connect())
            func expectInvalid(_ method: String, _ params: String, field: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
                let reply = try client.call(method, params)
                #expect(reply.errorCode == -32602, "\(method) \(params): \(reply)", sourceLocation: sourceLocation)
                #expect(reply["error"]?["data"]?["field"]?.stringValue == field, "\(method) \(params): \(reply)", sourceLocation: sourceLocation)
            }
            try expectInvalid("events.subscribe", #"{"topics":["module.renamed"]}"#, field: "topics[0]")
            try expectInvalid("events.subscribe", #"{"topics":["*","nothing.*"]}"#, field: "topics[1]")
            try expectInvalid("events.subscribe", #"{"topics":[]}"#, field: "topics")
            try expectInvalid("events.subscribe", #"{"topics":["*"],"since":-1}"#, field: "since")
            try expectInvalid("events.replay", #"{"since":0,"limit":0}"#, field: "limit")
            try expectInvalid("events.replay", #"{"since":0,"limit":1001}"#, field: "limit")
            try expectInvalid("events.replay", #"{"since":0,"topics":["chat.opened"]}"#, field: "topics[0]")
            try expectInvalid("events.replay", #"{"since":-5}"#, field: "since")
            try expectInvalid("audit.list", #"{"limit":201}"#, field: "limit")
            let missingParams = try client.call("events.subscribe", "{}")
            #expect(missingParams.errorCode == -32602, "\(missingParams)")

            let unknown = try client.call("events.unsubscribe", #"{"subscription":"sub_0000"}"#)
            try expectReply(unknown, equals: #"{"jsonrpc":"2.0","id":\#(unknown["id"]!),"error":{"code":-32030,"message":"Not found"}}"#)
            #expect(unknown["error"]?["data"] == .object(["kind": .string("subscription"), "id": .string("sub_0000")]), "\(unknown)")

            // Two subscriptions at most (the setting); a refused one leaves the others working, and
            // unsubscribing frees a place.
            let first = try client.subscribe(#"{"topics":["module.*"]}"#)
            _ = try client.subscribe(#"{"topics":["chat.*"]}"#)
            let third = try client.call("events.subscribe", #"{"topics":["*"]}"#)
            #expect(third.errorCode == -32041, "\(third)")
            #expect(third["error"]?["data"] == .object(["setting": .string("events.max_subscriptions_per_connection"), "limit": .integer(2)]), "\(third)")
            // Another connection has its own allowance, and cannot end this one's subscription.
            let other = ClientConnection(try daemon.connect())
            _ = try other.subscribe(#"{"topics":["module.*"]}"#)
            let foreign = try other.call("events.unsubscribe", #"{"subscription":"\#(first.id)"}"#)
            #expect(foreign.errorCode == -32030 && foreign["error"]?["data"]?["id"]?.stringValue == first.id, "\(foreign)")
            _ = try client.result("modules.create", #"{"title":"Still subscribed"}"#)
            #expect(try client.nextNotification()["params"]?["subscription"]?.stringValue == first.id)
            #expect(try other.nextNotification()["params"]?["topic"]?.stringValue == "module.created")
            _ = try client.result("events.unsubscribe", #"{"subscription":"\#(first.id)"}"#)
            _ = try client.subscribe(#"{"topics":["*"]}"#)
            // A connection from the daemon's own uid is always signed in, so the unauthenticated
            // refusal (-32020) cannot be reached from this test process.
        }
    }

    // MARK: Helpers

    /// A second user, registered and signed in on one connection: that connection and the session's
    /// token (`authenticated` opens more connections as that user).
    static func signIn(_ daemon: DaemonProcess, username: String) throws -> (connection: ClientConnection, token: String) {
        let connection = ClientConnection(try daemon.connect())
        _ = try connection.result("auth.register", #"{"username":"\#(username)","password":"correct horse"}"#)
        let login = try connection.result("auth.login", #"{"username":"\#(username)","password":"correct horse"}"#)
        return (connection, try #require(login["token"]?.stringValue, "\(login)"))
    }

    /// A new connection, authenticated with `token`.
    static func authenticated(_ daemon: DaemonProcess, token: String) throws -> ClientConnection {
        let connection = ClientConnection(try daemon.connect())
        _ = try connection.result("auth.authenticate", #"{"token":"\#(token)"}"#)
        return connection
    }

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
            burst += #"{"jsonrpc":"2.0","id":"\#(tag)-\#(n)","method":"chats.messages.append","params":{"chatId":"\#(chatID)","role":"user","content":"\#(tag) \#(n)"}}"# + "\n"
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
