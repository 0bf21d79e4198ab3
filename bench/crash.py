#!/usr/bin/env python3
"""bench/crash.py — crash consistency: kill -9 agentd mid-write, many times, and check what survived.

Each round starts agentd on the same database, runs CLIENTS connections that write as fast as the
replies come (chats.create, chats.messages.append, modules.create, modules.delete, modules.update),
then kills the daemon with SIGKILL at a random moment (ROUND_MIN..ROUND_MAX seconds), restarts it and
checks, against everything the clients saw acknowledged:

  - every acknowledged chat, message and module is there, exactly as written (title, content, tags,
    role, parent); every acknowledged delete stuck;
  - nothing half-written: each chat's messages form one chain (depth 1..n, each the child of the
    one before), chats.get's messageCount equals that chain, every listed module is whole (its
    content and tags match its title, as every writer writes them);
  - the event log has no gap: events.replay from 0 answers seqs 1..N without a hole, and there is
    exactly one chat.message.created per stored message and one module.created per module ever
    stored (a commit and its event are one transaction).

Usage: bench/crash.py AGENTD [ROUNDS] [SEED]   (bench/crash.sh builds agentd and calls this)
Exit status 0 when every round checks out, 1 with the first violation printed.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpcclient import Client, ProtocolViolation  # noqa: E402

CLIENTS = int(os.environ.get("CRASH_CLIENTS", "4"))
ROUND_MIN = float(os.environ.get("CRASH_ROUND_MIN", "0.3"))
ROUND_MAX = float(os.environ.get("CRASH_ROUND_MAX", "2.0"))


Violation = ProtocolViolation


def module_fields(title):
    """What a writer puts in a module titled `title`: checkable from the title alone."""
    return {"title": title, "description": "d:" + title, "content": ("c:" + title) * 20, "tags": ["crash", title[-1]]}


class Acked:
    """What clients saw acknowledged (the only writes that must survive)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.chats = {}  # chat id -> list of (message id, content), in append order
        self.modules = {}  # module id -> title (last acknowledged version)
        self.deleted = set()  # module ids whose delete was acknowledged
        self.updated = {}  # module id -> title set by an acknowledged update


def writer(path, index, round_no, acked, stop):
    rng = random.Random(f"{round_no}-{index}")
    try:
        client = Client(path)
        chat = client.result("chats.create", {"title": f"crash r{round_no} c{index}"})["id"]
        with acked.lock:
            acked.chats[chat] = []
        n = 0
        mine = []
        while not stop.is_set():
            n += 1
            op = rng.random()
            if op < 0.6:
                content = f"r{round_no}-c{index}-{n}"
                message = client.result("chats.messages.append", {"chatId": chat, "role": "user", "content": content})
                with acked.lock:
                    acked.chats[chat].append((message["id"], content))
            elif op < 0.8:
                title = f"crash r{round_no} c{index} n{n}"
                module = client.result("modules.create", module_fields(title))
                with acked.lock:
                    acked.modules[module["id"]] = title
                mine.append(module["id"])
            elif op < 0.9 and mine:
                victim = mine.pop(rng.randrange(len(mine)))
                client.result("modules.delete", {"id": victim})
                with acked.lock:
                    acked.deleted.add(victim)
            elif mine:
                target = mine[rng.randrange(len(mine))]
                title = f"crash r{round_no} c{index} n{n} updated"
                client.result("modules.update", {"id": target, **module_fields(title)})
                with acked.lock:
                    acked.modules[target] = title
    except (OSError, EOFError, ValueError):
        pass  # the daemon was killed: whatever was not acknowledged is uncertain


def all_pages(client, method, params, key="items"):
    items, cursor = [], None
    while True:
        page = client.result(method, dict(params, **({"cursor": cursor} if cursor else {})))
        items += page[key]
        cursor = page.get("nextCursor")
        if not cursor:
            return items


def verify(path, acked, round_no):
    client = Client(path)
    # Modules: every listed one whole; every acknowledged one there as last written; deletes stuck.
    listed = {m["id"]: m for m in all_pages(client, "modules.list", {"limit": 200})}
    for module_id, summary in listed.items():
        full = client.result("modules.get", {"id": module_id})
        expected = module_fields(full["title"])
        full["tags"], expected["tags"] = sorted(full["tags"]), sorted(expected["tags"])
        for field in ("description", "content", "tags"):
            if full[field] != expected[field]:
                raise Violation(f"round {round_no}: module {module_id} half-written: {field}={full[field]!r}")
    for module_id, title in acked.modules.items():
        if module_id in acked.deleted:
            reply = client.call("modules.get", {"id": module_id})
            if reply.get("error", {}).get("code") != -32030:
                raise Violation(f"round {round_no}: acknowledged delete of {module_id} lost: {reply}")
            continue
        if module_id not in listed:
            # An unacknowledged delete may have committed; only an acknowledged write must survive.
            continue
        # The title is the last acknowledged one, or a later unacknowledged update of the same writer.
        if listed[module_id]["title"] != title and not listed[module_id]["title"].startswith(title.split(" n")[0]):
            raise Violation(f"round {round_no}: module {module_id} title {listed[module_id]['title']!r}, acknowledged {title!r}")
    missing = [m for m in acked.modules if m not in listed and m not in acked.deleted]
    # A module missing without an acknowledged delete is fine only when its delete committed
    # without the reply arriving: its module.deleted event must then be there (checked below).

    # Chats: every acknowledged message present in one unbroken chain; counters match.
    stored_messages = 0
    for chat_id, messages in acked.chats.items():
        chat = client.result("chats.get", {"id": chat_id})
        items = all_pages(client, "chats.messages.list", {"chatId": chat_id, "limit": 500})
        stored_messages += len(items)
        ids = [item["id"] for item in items]
        lost = [m for m, _ in messages if m not in set(ids)]
        if lost:
            raise Violation(f"round {round_no}: chat {chat_id}: {len(lost)} acknowledged messages lost, first {lost[0]}")
        if [item["depth"] for item in items] != list(range(1, len(items) + 1)):
            raise Violation(f"round {round_no}: chat {chat_id}: depths are not 1..{len(items)}")
        for parent, child in zip(items, items[1:]):
            if child.get("parentId") != parent["id"]:
                raise Violation(f"round {round_no}: chat {chat_id}: {child['id']} does not follow {parent['id']}")
        contents = dict(messages)
        for item in items:
            if item["id"] in contents and item["content"] != contents[item["id"]]:
                raise Violation(f"round {round_no}: message {item['id']} content {item['content']!r}")
        if chat["messageCount"] != len(items):
            raise Violation(f"round {round_no}: chat {chat_id}: messageCount {chat['messageCount']}, chain of {len(items)}")

    # Events: contiguous seqs from 1; one per stored message; one module.created per module.
    seqs, created_messages, created_modules, deleted_modules = [], 0, set(), set()
    since = 0
    while True:
        page = client.result("events.replay", {"since": since, "limit": 1000})
        for event in page["events"]:
            seqs.append(event["seq"])
            if event["topic"] == "chat.message.created":
                created_messages += 1
            elif event["topic"] == "module.created":
                created_modules.add(event["data"]["moduleId"])
            elif event["topic"] == "module.deleted":
                deleted_modules.add(event["data"]["moduleId"])
        since = page["lastSeq"]
        if not page["hasMore"]:
            break
    if seqs != list(range(1, len(seqs) + 1)):
        hole = next((a, b) for a, b in zip([0] + seqs, seqs) if b != a + 1)
        raise Violation(f"round {round_no}: event seqs have a hole after {hole[0]} (next {hole[1]})")
    if created_messages != stored_messages:
        raise Violation(f"round {round_no}: {created_messages} chat.message.created events, {stored_messages} messages stored")
    if set(listed) != created_modules - deleted_modules:
        raise Violation(
            f"round {round_no}: modules stored {len(listed)}, created-minus-deleted events {len(created_modules - deleted_modules)}")
    unexplained = [m for m in missing if m not in deleted_modules]
    if unexplained:
        raise Violation(f"round {round_no}: acknowledged module {unexplained[0]} gone without a delete")
    client.close()
    return len(seqs), stored_messages, len(listed)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    agentd = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else int(time.time())
    rng = random.Random(seed)
    folder = tempfile.mkdtemp(prefix="agentd-crash.")
    sock, db = f"{folder}/agentd.sock", f"{folder}/agentd.sqlite"
    env = dict(os.environ, AGENTD_RATE_LIMITING="off")
    acked = Acked()
    print(f"crash.py: {rounds} rounds, {CLIENTS} writers, kill after {ROUND_MIN}-{ROUND_MAX} s, seed {seed}, folder {folder}")
    log = open(f"{folder}/agentd.log", "ab")
    try:
        for round_no in range(1, rounds + 1):
            daemon = subprocess.Popen([agentd, "--socket", sock, "--database", db, "--log-level", "warning"], stdout=log, stderr=log, env=env)
            Client(sock, timeout=60).close()  # the kill window starts once it listens
            stop = threading.Event()
            threads = [threading.Thread(target=writer, args=(sock, i, round_no, acked, stop)) for i in range(CLIENTS)]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(ROUND_MIN, ROUND_MAX))
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            checker = subprocess.Popen([agentd, "--socket", sock, "--database", db, "--log-level", "warning"], stdout=log, stderr=log, env=env)
            try:
                events, messages, modules = verify(sock, acked, round_no)
            finally:
                checker.send_signal(signal.SIGKILL)
                checker.wait()
            acked_messages = sum(len(m) for m in acked.chats.values())
            print(f"round {round_no:2}: ok — {messages} messages ({acked_messages} acknowledged), {modules} modules, {events} events without a gap")
    except Violation as violation:
        print(f"VIOLATION: {violation}\n(database and log kept in {folder})", file=sys.stderr)
        sys.exit(1)
    print(f"crash.py: {rounds} rounds consistent")
    subprocess.run(["rm", "-rf", folder])


if __name__ == "__main__":
    main()
