#!/usr/bin/env python3
"""bench/abuse_hostile.py — every hostile role of bench/abuse.py in ONE process, on non-blocking sockets.

Until 2026-12-07 each role was its own Python process (about 45 of them on a 2-core machine). Those
processes took seconds to start, so the measured window still held their set-up (240 auth.authenticate
and 240 events.subscribe in a 6 s window) and the amplifiers' fill; their subscriptions were all refused
(patterns matching no topic) and the describer died when its login was refused (bench/abuse_compare.py
shows both sides). Here one thread drives every connection through a selector (epoll), each role's
achieved rate is counted, and the process's CPU is printed next to the daemon's.

Python, not C: the hostile side's work is the kernel's (connect, send, recv) and waiting on the daemon
(rate-limit pauses, unread-reply pauses); at the few thousand events per second it handles, the
interpreter's share stays small (0.26 CPU s in a 6 s window, against the daemon's 1.2-1.9), and every
reply that steers a role (tokens, `retryAfterMs`) is JSON. Each role attacks at least as hard as the
per-process one did:

  amplify       AMPLIFIERS connections (ABUSER_UID) write batches of 1,000 rpc.discover calls as fast
                as the socket takes them and never read; a connection the daemon cuts is opened again
                after RECONNECT_PAUSE, and one blocked for about ABUSE_AMPLIFY_CYCLE seconds (default 5,
                spread 0.5-1.5x over the amplifiers; 0: hold it) is closed and opened again.
  usernames     one connection (ABUSER_UID) sends auth.login with an 8 MiB username, again after each
                answer; cut (the daemon closes a peer not signed in at its size limit), it connects
                again after RECONNECT_PAUSE.
  descriptions  one connection signed in as `describer` (ABUSER_UID) sends modules.create with a 1 MiB
                description, again as soon as each answer comes.
  subscribe     16 uids (ABUSER_UID + 1 … + 16; the per-process harness's first group shared ABUSER_UID)
                × SUBSCRIBERS/16 connections, each subscribed with 64 valid patterns and drained. Each
                uid signs in once and authenticates the rest with its token.
  guess         8 connections (ABUSER_UID) send wrong passwords for `victim`, one call at a time each.
  select        one connection (BRANCHER_UID) selects the deep branch and the second root in turn, and
                waits `retryAfterMs` when refused (within the limits every user has).

The roles that sign in (subscribe, descriptions, select) go first; the flood (amplify, usernames, guess)
starts once they have: the guessers spend ABUSER_UID's `auth` budget that the describer needs to sign
in. A refusal while signing in (-32017) is waited out and retried. Every role runs until the harness
is told to stop (the per-process roles stopped 2 s before the well-behaved client's loaded phase did).

Usage (bench/abuse.py runs it, as root so that each connection is made as its role's uid):
    abuse_hostile.py SOCKET DEEP,FORK
Standard output: a line `ready` once every role is set up (signed in, subscribed) and the flood (amplifiers,
usernames, guessers) has its connections open.
Standard input: a line `measure` starts the measured window (counters are snapshotted); end of input
stops every role and prints one JSON line: per role, the counts and rates over the window, the
connections held (least and mean, sampled every 0.25 s), and this process's CPU seconds.
Environment: ABUSE_ROLES, ABUSE_AMPLIFIERS, ABUSE_SUBSCRIBERS, as for bench/abuse.py.
"""
import collections
import errno
import heapq
import json
import os
import resource
import selectors
import socket
import sys
import time

AMPLIFIERS = int(os.environ.get("ABUSE_AMPLIFIERS", "24"))
SUBSCRIBERS = int(os.environ.get("ABUSE_SUBSCRIBERS", "256"))
ALL_ROLES = ("amplify", "usernames", "descriptions", "subscribe", "guess", "select")
ROLES_ON = set(os.environ.get("ABUSE_ROLES", ",".join(ALL_ROLES)).split(","))
ABUSER_UID = 60200          # amplify, usernames, descriptions, guess; + 1..16 for the subscribers
BRANCHER_UID = 60300
SUBSCRIBER_UIDS = 16
GUESSERS = 8
PASSWORD = "abuse-bench-password-1"
# The per-process harness slept 50 ms after a cut before connecting again; the same here, so that the
# attack's rate is the daemon's doing, not a tighter loop's.
RECONNECT_PAUSE = 0.05
# An amplifier the daemon has stopped reading (its unread replies at their bound) closes and connects
# again after this many seconds blocked (0: never, it just holds the connection). Without it the
# amplifiers go quiet once full, 2-3 s after they start: the per-process harness measured that
# transient (612 rpc.discover/s executed in its window, its roles still starting), this one measures
# after it, so the cycle keeps the daemon executing discovers and freeing replies the whole run.
AMPLIFY_CYCLE = float(os.environ.get("ABUSE_AMPLIFY_CYCLE", "5"))
IS_ROOT = os.geteuid() == 0


def line(method, params, ident=1):
    return (json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}) + "\n").encode()


# Requests an attacker builds once and sends again and again.
DISCOVER_BATCH = ("[" + ",".join(json.dumps({"jsonrpc": "2.0", "id": i, "method": "rpc.discover"}) for i in range(1000)) + "]\n").encode()
HUGE_LOGIN = line("auth.login", {"username": "u" * (8 << 20), "password": "wrong-password-1"})
BIG_MODULE = line("modules.create", {"title": "big", "description": "d" * (1 << 20)})
# 64 patterns the daemon accepts (it refuses one that matches no topic: the per-process harness's
# `chat.pattern{i}.*` were all refused, so it held its connections with no subscription at all).
# Every topic and prefix pattern of the daemon's events, repeated up to 63, then "*" last, so that
# matching an event tries the most patterns before one matches.
_KNOWN = ["chat.created", "chat.renamed", "chat.deleted", "chat.message.created", "module.created", "module.updated",
          "module.deleted", "user.registered", "user.sessions.revoked", "prompt.created", "prompt.updated", "prompt.deleted",
          "agent.run.started", "agent.run.completed", "agent.run.failed", "agent.run.cancelled",
          "chat.*", "chat.message.*", "module.*", "user.*", "user.sessions.*", "prompt.*", "agent.*", "agent.run.*"]
TOPICS = [_KNOWN[i % len(_KNOWN)] for i in range(63)] + ["*"]


class Stats:
    """One role's counters. `held` (connections open now) and `ready` (connections past their
    set-up: signed in, subscribed) are gauges; the rest only grow."""
    COUNTERS = ("connects", "cuts", "connect_failures", "bytes_sent", "bytes_received", "calls", "replies",
                "notifications", "batches", "cycles")

    def __init__(self, role):
        self.role = role
        self.values = dict.fromkeys(self.COUNTERS, 0)
        self.errors = {}
        self.held = 0
        self.ready = 0
        self.samples = []

    def add(self, name, amount=1):
        self.values[name] += amount

    def snapshot(self):
        return dict(self.values), dict(self.errors)


class Sleep:
    def __init__(self, seconds):
        self.seconds = seconds


class Call:
    """Send `data` (one JSON-RPC line) and resume the flow with the parsed reply."""

    def __init__(self, data):
        self.data = data


class Drain:
    """Read and count whatever comes, forever (a subscriber)."""


class Connection:
    """One socket, driven by a flow: a generator that yields Call, Sleep or Drain. `flood` instead
    writes the same bytes forever and never reads (an amplifier)."""

    def __init__(self, loop, stats, uid, flow=None, flood=None, on_ready=None):
        self.loop, self.stats, self.uid = loop, stats, uid
        self.flow_factory, self.flood = flow, flood
        self.on_ready = on_ready    # called the first time the connection is set up
        self.sock = None
        self.out = collections.deque()   # memoryviews to write, in order; a message is never interleaved
        self.offset = 0                  # into out[0]
        self.inbuf = bytearray()
        self.flow = None
        self.waiting = False    # a Call's reply is due
        self.draining = False
        self.ready = False
        self.progressed = 0.0   # when a write last took bytes (an amplifier's cycle)

    # --- life cycle -------------------------------------------------------------------------------

    def open(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        # SO_PEERCRED records the effective uid of the process that connects: switch it for the
        # connect only (root can switch back), so one process is every role's uid.
        if IS_ROOT:
            os.setegid(self.uid)
            os.seteuid(self.uid)
        try:
            result = sock.connect_ex(self.loop.path)
        finally:
            if IS_ROOT:
                os.seteuid(0)
                os.setegid(0)
        if result != 0:     # EAGAIN: the listen backlog is full; anything else: the daemon is away
            sock.close()
            self.stats.add("connect_failures")
            self.loop.later(RECONNECT_PAUSE if result != errno.EAGAIN else 0.01, self.open)
            return
        self.sock = sock
        self.stats.add("connects")
        self.stats.held += 1
        self.inbuf.clear()
        self.waiting = self.draining = False
        self.out.clear()
        self.offset = 0
        if self.flood is not None:
            self.progressed = time.monotonic()
            self.out.append(memoryview(self.flood))
            self.loop.selector.register(sock, selectors.EVENT_WRITE, self)
        else:
            self.loop.selector.register(sock, selectors.EVENT_READ, self)
            self.flow = self.flow_factory(self)
            self.advance(None)

    def cut(self):
        """The daemon closed the connection (or refused a write): count it, connect again later."""
        if self.sock is None:
            return
        self.loop.selector.unregister(self.sock)
        self.sock.close()
        self.sock = None
        self.out.clear()
        self.stats.held -= 1
        self.set_ready(False)
        if self.flow is not None:
            self.flow.close()
            self.flow = None
        if not self.loop.stopping:
            self.stats.add("cuts")
            self.loop.later(RECONNECT_PAUSE, self.open)

    def set_ready(self, ready):
        if ready != self.ready:
            self.ready = ready
            self.stats.ready += 1 if ready else -1
        if ready and self.on_ready is not None:
            callback, self.on_ready = self.on_ready, None
            callback()

    # --- the flow ---------------------------------------------------------------------------------

    def advance(self, value):
        try:
            step = self.flow.send(value)
        except StopIteration:
            self.flow = None
            return
        except Exception as error:      # an answer the flow did not expect: count it, start over
            key = f"flow: {error}"[:120]
            self.stats.errors[key] = self.stats.errors.get(key, 0) + 1
            self.flow = None
            self.cut()
            return
        if isinstance(step, Call):
            self.waiting = True
            self.stats.add("calls")
            self.write(step.data)
        elif isinstance(step, Sleep):
            self.loop.later(step.seconds, lambda flow=self.flow: self.flow is flow and self.advance(None))
        elif isinstance(step, Drain):
            self.draining = True

    def write(self, data):
        if not self.out:
            self.loop.selector.modify(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)
        self.out.append(memoryview(data))

    # --- events -----------------------------------------------------------------------------------

    def on_event(self, mask):
        if mask & selectors.EVENT_WRITE and self.out:
            head = self.out[0]
            try:
                sent = self.sock.send(head[self.offset:self.offset + (1 << 20)])
            except BlockingIOError:
                sent = 0
            except OSError:
                self.cut()
                return
            self.stats.add("bytes_sent", sent)
            if sent:
                self.progressed = time.monotonic()
            self.offset += sent
            if self.offset == len(head):
                self.offset = 0
                if self.flood is not None:
                    self.stats.add("batches")      # and the same batch again
                else:
                    self.out.popleft()
                    if not self.out:
                        self.loop.selector.modify(self.sock, selectors.EVENT_READ, self)
        if mask & selectors.EVENT_READ and self.flood is None and self.sock is not None:
            try:
                chunk = self.sock.recv(1 << 18)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.cut()
                return
            self.stats.add("bytes_received", len(chunk))
            self.inbuf += chunk
            self.take_lines()

    def take_lines(self):
        while self.sock is not None:
            end = self.inbuf.find(b"\n")
            if end < 0:
                return
            raw = bytes(self.inbuf[:end])
            del self.inbuf[:end + 1]
            if self.draining:
                self.stats.add("notifications")
                continue
            message = json.loads(raw)
            if "id" not in message:
                self.stats.add("notifications")
                continue
            if not self.waiting:
                continue
            self.waiting = False
            self.stats.add("replies")
            if "error" in message:
                code = str(message["error"].get("code"))
                self.stats.errors[code] = self.stats.errors.get(code, 0) + 1
            self.advance(message)


class Loop:
    def __init__(self, path):
        self.path = path
        self.selector = selectors.DefaultSelector()
        self.timers = []
        self.sequence = 0
        self.stopping = False

    def later(self, seconds, callback):
        self.sequence += 1
        heapq.heappush(self.timers, (time.monotonic() + seconds, self.sequence, callback))

    def run(self, control, on_control):
        self.selector.register(control, selectors.EVENT_READ, None)
        while not self.stopping:
            timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else 1.0
            for key, mask in self.selector.select(min(timeout, 1.0)):
                if key.data is None:
                    on_control()
                elif key.data.sock is key.fileobj:     # not cut by an earlier event of this round
                    key.data.on_event(mask)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                heapq.heappop(self.timers)[2]()


# --- the roles' flows: generators of Call, Sleep and Drain ------------------------------------------

def refused_wait(reply):
    """Seconds to wait when `reply` is a rate-limit refusal, else None."""
    error = reply.get("error") if reply else None
    if error and error.get("code") == -32017:
        return error.get("data", {}).get("retryAfterMs", 1000) / 1000
    return None


def signed_in(username, token_holder=None):
    """Registers `username` (or finds it registered) and logs in, waiting out refusals; keeps the
    token in `token_holder['token']`."""
    def flow(conn):
        while True:
            reply = yield Call(line("auth.register", {"username": username, "password": PASSWORD}))
            wait = refused_wait(reply)
            if wait is None:
                break
            yield Sleep(wait)
        while True:
            reply = yield Call(line("auth.login", {"username": username, "password": PASSWORD}))
            wait = refused_wait(reply)
            if wait is None:
                break
            yield Sleep(wait)
        if "result" not in reply:
            raise RuntimeError(f"login {username}: {reply}")
        if token_holder is not None:
            token_holder["token"] = reply["result"]["token"]
    return flow


def flow_usernames(conn):
    while True:
        yield Call(HUGE_LOGIN)


def flow_descriptions(conn):
    yield from signed_in("describer")(conn)
    conn.set_ready(True)
    while True:
        yield Call(BIG_MODULE)


def flow_guess(conn):
    n = 0
    while True:
        yield Call(line("auth.login", {"username": "victim", "password": f"guess-{n}-wrong"}))
        n += 1


def flow_select(deep, fork, selects):
    def flow(conn):
        while True:
            reply = yield Call(line("auth.login", {"username": "brancher", "password": PASSWORD}))
            wait = refused_wait(reply)
            if wait is None:
                break
            yield Sleep(wait)
        conn.set_ready(True)
        n = 0
        while True:
            reply = yield Call(line("chats.branches.select", {"messageId": deep if n % 2 == 0 else fork}))
            if "result" in reply:
                n += 1
                selects[0] += 1
            elif (wait := refused_wait(reply)) is not None:
                yield Sleep(wait)
            else:
                raise RuntimeError(f"select: {reply}")
    return flow


def flow_subscriber(group, index, loop, stats):
    """The first connection of a uid signs in, then opens the uid's other connections, which
    authenticate with its token; each subscribes with 64 patterns and drains."""
    def subscribe(conn):
        while True:
            reply = yield Call(line("events.subscribe", {"topics": TOPICS}))
            wait = refused_wait(reply)
            if wait is None:
                break
            yield Sleep(wait)
        if "result" in reply:
            conn.set_ready(True)
        yield Drain()

    def authenticated(conn):
        while "token" not in group:
            yield Sleep(0.05)
        while True:
            reply = yield Call(line("auth.authenticate", {"token": group["token"]}))
            wait = refused_wait(reply)
            if wait is None:
                break
            yield Sleep(wait)
        yield from subscribe(conn)

    def first(conn):
        yield from signed_in(f"subscriber{index}", group)(conn)
        if not group.get("opened"):
            group["opened"] = True
            for _ in range(group["count"] - 1):
                Connection(loop, stats, conn.uid, flow=authenticated).open()
        yield from subscribe(conn)
    return first


# --- the run ------------------------------------------------------------------------------------------

def main():
    path, branch = sys.argv[1], sys.argv[2]
    deep, fork = branch.split(",")
    started = time.monotonic()
    if IS_ROOT:
        os.setgroups([])
    # 256 subscribers and the rest: more descriptors than some default soft limits.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))

    loop = Loop(path)
    stats = {role: Stats(role) for role in ALL_ROLES if role in ROLES_ON}
    selects = [0]
    # Two stages. First the roles that must sign in (32 password hashes for the subscribers alone),
    # which also keeps the guessers from spending ABUSER_UID's `auth` budget (a burst, then 1/s)
    # before the describer, of the same uid, has signed in. Then the flood: amplifiers, usernames,
    # guessers, which bench/abuse.py gives 2 s before it measures, as the per-process harness did.
    if "subscribe" in stats:
        per_uid = max(1, SUBSCRIBERS // SUBSCRIBER_UIDS)
        for i in range(SUBSCRIBER_UIDS):
            group = {"count": per_uid}
            Connection(loop, stats["subscribe"], ABUSER_UID + 1 + i, flow=flow_subscriber(group, i, loop, stats["subscribe"])).open()
    if "descriptions" in stats:
        Connection(loop, stats["descriptions"], ABUSER_UID, flow=flow_descriptions).open()
    if "select" in stats:
        Connection(loop, stats["select"], BRANCHER_UID, flow=flow_select(deep, fork, selects)).open()

    amplifiers = []

    def cycle_amplifiers():
        # Spread over 0.5-1.5 x AMPLIFY_CYCLE, one threshold per amplifier: they fill at the same
        # moment, and the same threshold would bring them back in one burst every cycle.
        now = time.monotonic()
        for i, conn in enumerate(amplifiers):
            if conn.sock is not None and now - conn.progressed >= AMPLIFY_CYCLE * (0.5 + i / len(amplifiers)):
                conn.stats.add("cycles")
                conn.stats.add("cuts", -1)      # cut() counts a cut: this one is ours
                conn.cut()
        loop.later(0.5, cycle_amplifiers)

    def flood():
        for _ in range(AMPLIFIERS if "amplify" in stats else 0):
            amplifiers.append(Connection(loop, stats["amplify"], ABUSER_UID, flood=DISCOVER_BATCH))
            amplifiers[-1].open()
        if amplifiers and AMPLIFY_CYCLE > 0:
            cycle_amplifiers()
        if "usernames" in stats:
            Connection(loop, stats["usernames"], ABUSER_UID, flow=flow_usernames).open()
        for _ in range(GUESSERS if "guess" in stats else 0):
            Connection(loop, stats["guess"], ABUSER_UID, flow=flow_guess).open()

    window = {}
    # What "set up" means per role: every connection open, and signed in or subscribed where it must be.
    signed_in_stage = {"subscribe": max(1, SUBSCRIBERS // SUBSCRIBER_UIDS) * SUBSCRIBER_UIDS, "descriptions": 1, "select": 1}
    flood_stage = {"amplify": AMPLIFIERS, "guess": GUESSERS}
    progress = []   # seconds to: the sign-ins done (flood started), the flood's connections open

    def sample():
        if window:
            for role in stats.values():
                role.samples.append((role.held, role.ready))
        elif not progress and all(stats[name].ready >= count for name, count in signed_in_stage.items() if name in stats):
            progress.append(time.monotonic() - started)
            flood()
        elif len(progress) == 1 and all(stats[name].held >= count for name, count in flood_stage.items() if name in stats):
            progress.append(time.monotonic() - started)
            print("ready", flush=True)
        loop.later(0.05 if len(progress) < 2 else 0.25, sample)

    def on_control():
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            loop.stopping = True
        elif b"measure" in data and not window:
            window["at"] = time.monotonic()
            window["cpu"] = os.times()
            window["counts"] = {name: role.snapshot() for name, role in stats.items()}
            window["selects"] = selects[0]

    sample()
    loop.run(sys.stdin.fileno(), on_control)

    ended, cpu = time.monotonic(), os.times()
    window.setdefault("at", started)
    window.setdefault("cpu", None)
    seconds = max(1e-9, ended - window["at"])
    report = {"seconds": seconds, "setup_seconds": progress[0] if progress else None, "roles": {}, "selects": selects[0] - window.get("selects", 0),
              "cpu_window": (cpu.user + cpu.system) - (window["cpu"].user + window["cpu"].system) if window["cpu"] else None,
              "cpu_total": cpu.user + cpu.system, "elapsed_total": ended - started}
    for name, role in stats.items():
        before, before_errors = window.get("counts", {}).get(name, (dict.fromkeys(Stats.COUNTERS, 0), {}))
        counts = {key: role.values[key] - before[key] for key in Stats.COUNTERS}
        errors = {code: n - before_errors.get(code, 0) for code, n in role.errors.items() if n - before_errors.get(code, 0)}
        held = [h for h, _ in role.samples] or [role.held]
        ready = [r for _, r in role.samples] or [role.ready]
        report["roles"][name] = {"counts": counts, "totals": dict(role.values), "errors": errors, "held_min": min(held), "held_mean": sum(held) / len(held),
                                 "ready_min": min(ready), "ready_mean": sum(ready) / len(ready)}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
