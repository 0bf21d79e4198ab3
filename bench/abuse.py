#!/usr/bin/env python3
"""bench/abuse.py — the release daemon under every abuse of issue 17 at once, beside a well-behaved client.

The daemon runs with its shipped limits (rate limiting on) on a socket that other uids may open. Then:

  1. setup (rate limits off): a user (uid BRANCHER_UID) builds a chat whose branch is BRANCH messages
     deep, with a second root beside it; a well-behaved user (uid GOOD_UID) registers;
  2. idle: the well-behaved client appends and reads at a steady pace for PHASE seconds (its idle p50/p99);
  3. abuse: the same client, while other uids, each in its own process, at once:
       - send batches of 1,000 rpc.discover calls and never read the replies (AMPLIFIERS connections),
       - log in with usernames of several MiB,
       - create modules with 1 MiB descriptions,
       - hold 64-pattern subscriptions on SUBSCRIBERS connections (16 uids),
       - guess a password with parallel wrong logins,
     and the branch's user selects back and forth between the BRANCH-deep branch (by its root, a
     walk of BRANCH levels down) and the second root;
  4. check: every append the well-behaved client saw acknowledged is readable, and the daemon never exited.

It prints the daemon's peak RSS (VmHWM), the database's growth during the abuse, the well-behaved
client's p50/p99 idle and under abuse, and the acknowledged writes found; then PASS or FAIL for each
target (RSS < 512 MiB, p99 under abuse < 5x idle p99, nothing acknowledged lost, the daemon alive).
Exit status 0 when every target is met.

Usage: bench/abuse.py AGENTD     (bench/abuse.sh builds agentd and calls this; must run as root to
switch uids: without root every client runs as this uid, which the daemon exempts from rate limits)
Environment: ABUSE_PHASE (seconds, default 10), ABUSE_BRANCH (default 100000), ABUSE_AMPLIFIERS (24),
ABUSE_SUBSCRIBERS (256), ABUSE_PACE (well-behaved calls per second, default 60), ABUSE_ROLES (which
abuses run, comma-separated: amplify,usernames,descriptions,subscribe,guess,select — all by default).
"""
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcclient  # noqa: E402


def Client(path, timeout=30):
    """A connection whose reads wait up to 120 s: under abuse, a reply can take long."""
    return rpcclient.Client(path, timeout, read_timeout=120)

PHASE = float(os.environ.get("ABUSE_PHASE", "10"))
BRANCH = int(os.environ.get("ABUSE_BRANCH", "100000"))
AMPLIFIERS = int(os.environ.get("ABUSE_AMPLIFIERS", "24"))
SUBSCRIBERS = int(os.environ.get("ABUSE_SUBSCRIBERS", "256"))
PACE = float(os.environ.get("ABUSE_PACE", "60"))
# Which abuses run (for finding which one costs the well-behaved client what): all by default.
ROLES_ON = set(os.environ.get("ABUSE_ROLES", "amplify,usernames,descriptions,subscribe,guess,select").split(","))
GOOD_UID = 60100
ABUSER_UID = 60200          # + 0..15 for the subscribers' uids
BRANCHER_UID = 60300        # the user whose long branch is selected back and forth
PASSWORD = "abuse-bench-password-1"
IS_ROOT = os.geteuid() == 0
# Children that act as other users need an interpreter those users may run (not one under /root).
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def as_uid(uid):
    """preexec_fn for a child that acts as another local user."""
    if not IS_ROOT:
        return None

    def switch():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return switch


def sign_in(client, username):
    """Registers `username` (or finds it registered) and binds the connection to it; returns the token."""
    client.call("auth.register", {"username": username, "password": PASSWORD})
    reply = client.call("auth.login", {"username": username, "password": PASSWORD})
    if "result" not in reply:
        raise RuntimeError(f"login {username}: {reply}")
    return reply["result"]["token"]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


# --- the roles, each run as `abuse.py ROLE SOCKET SECONDS` in its own process -----------------------

def role_good(path, seconds, chat_id):
    """Appends and reads at PACE calls/s; prints one JSON line: latencies (ms) and acknowledged ids."""
    client = Client(path)
    client.call("auth.login", {"username": "good", "password": PASSWORD})
    latencies, acked = [], []
    interval = 1.0 / PACE
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        due = start + n * interval
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        began = time.perf_counter()
        if n % 3 == 2:
            reply = client.call("chats.messages.list", {"chatId": chat_id, "limit": 20})
        else:
            reply = client.call("chats.messages.append", {"chatId": chat_id, "role": "user", "content": f"good {n}"})
            if "result" in reply:
                acked.append(reply["result"]["id"])
        latencies.append((time.perf_counter() - began) * 1000)
        if "error" in reply:
            print(json.dumps({"error": reply["error"]}), file=sys.stderr)
        n += 1
    print(json.dumps({"latencies": latencies, "acked": acked}))


def role_amplify(path, seconds, _):
    """Batches of 1,000 rpc.discover on a connection that never reads; reconnects when cut."""
    batch = ("[" + ",".join(json.dumps({"jsonrpc": "2.0", "id": i, "method": "rpc.discover"}) for i in range(1000)) + "]\n").encode()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            sock.settimeout(max(0.1, end - time.monotonic()))
            while time.monotonic() < end:
                sock.sendall(batch)
        except OSError:
            pass
        finally:
            sock.close()
        time.sleep(0.05)


def role_usernames(path, seconds, _):
    """auth.login with a username of 8 MiB, again and again, reading each answer (the request's
    bytes are built once, as an attacker would: the harness's own CPU is not what is measured)."""
    line = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "auth.login", "params": {
        "username": "u" * (8 << 20), "password": "wrong-password-1"}}) + "\n").encode()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            client = Client(path)
            while time.monotonic() < end:
                client.sock.sendall(line)
                client.read()
        except (OSError, EOFError):
            time.sleep(0.05)


def role_descriptions(path, seconds, _):
    """modules.create with a 1 MiB description, as fast as the answers come (bytes built once)."""
    client = Client(path)
    sign_in(client, "describer")
    line = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "modules.create", "params": {
        "title": "big", "description": "d" * (1 << 20)}}) + "\n").encode()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        client.sock.sendall(line)
        client.read()


def role_subscribe(path, seconds, index):
    """SUBSCRIBERS / 16 connections of one uid, each subscribed with 64 patterns, drained."""
    count = max(1, SUBSCRIBERS // 16)
    first = Client(path)
    token = sign_in(first, f"subscriber{index}")
    topics = [f"chat.pattern{i}.*" for i in range(63)] + ["*"]
    clients = [first]
    for _ in range(count - 1):
        client = Client(path)
        client.call("auth.authenticate", {"token": token})
        clients.append(client)
    selector = selectors.DefaultSelector()
    for client in clients:
        client.send("events.subscribe", {"topics": topics})
        client.sock.setblocking(False)
        selector.register(client.sock, selectors.EVENT_READ)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in selector.select(timeout=0.2):
            try:
                if not key.fileobj.recv(1 << 16):
                    selector.unregister(key.fileobj)
            except OSError:
                selector.unregister(key.fileobj)


def role_guess(path, seconds, _):
    """Wrong passwords for one username from 8 connections at once."""
    def guess():
        client = Client(path)
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            client.call("auth.login", {"username": "victim", "password": f"guess-{n}-wrong"})
            n += 1
    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def role_build_branch(path, _seconds, _):
    """Setup, as BRANCHER_UID: a chat with a BRANCH-deep branch and a second root; prints both roots."""
    client = Client(path)
    sign_in(client, "brancher")
    chat = client.result("chats.create", {"title": "long branch"})["id"]
    deep, fork = build_branch(client, chat)
    print(f"{deep},{fork}")


def role_select(path, seconds, ids):
    """Another user selects their deep branch (from its root) and their second root in turn, within
    the rate limits every user has."""
    deep, fork = ids.split(",")
    client = Client(path)
    client.result("auth.login", {"username": "brancher", "password": PASSWORD})
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        reply = client.call("chats.branches.select", {"messageId": deep if n % 2 == 0 else fork})
        if "result" in reply:
            n += 1
        elif reply["error"]["code"] == -32017:
            time.sleep(reply["error"]["data"]["retryAfterMs"] / 1000)
        else:
            raise RuntimeError(f"select: {reply}")
    print(json.dumps({"selects": n}))


ROLES = {
    "good": role_good, "amplify": role_amplify, "usernames": role_usernames, "descriptions": role_descriptions,
    "subscribe": role_subscribe, "guess": role_guess, "select": role_select, "buildbranch": role_build_branch,
}


# --- the run ---------------------------------------------------------------------------------------

def spawn(role, path, seconds, argument, uid=None):
    command = [PYTHON, os.path.abspath(__file__), role, path, str(seconds), str(argument)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=as_uid(uid) if uid else None)


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def database_bytes(folder):
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder) if name.startswith("agentd.db"))


def build_branch(client, chat_id):
    """BRANCH appends, pipelined 500 at a time, then a second root beside the first; returns both
    roots. Selecting the first walks down BRANCH levels (the newest child at each step) to the leaf."""
    sent = 0
    while sent < BRANCH:
        count = min(500, BRANCH - sent)
        wanted = [client.send("chats.messages.append", {"chatId": chat_id, "role": "user", "content": f"m{sent + i}"}) for i in range(count)]
        for _ in wanted:
            reply = client.read()
            if "result" not in reply:
                raise RuntimeError(f"append: {reply}")
        sent += count
    first = client.result("chats.messages.list", {"chatId": chat_id, "limit": 2})
    root = first["items"][0]["id"]
    fork = client.result("chats.messages.append", {"chatId": chat_id, "role": "user", "content": "fork", "siblingOf": root})["id"]
    return root, fork


def main():
    agentd = os.path.abspath(sys.argv[1])
    folder = tempfile.mkdtemp(prefix="agentd-abuse-")
    os.chmod(folder, 0o711)
    path = os.path.join(folder, "agentd.sock")
    database = os.path.join(folder, "agentd.db")
    log = open(os.path.join(folder, "agentd.log"), "w")

    def start(limits):
        environment = dict(os.environ)
        environment.pop("AGENTD_RATE_LIMITING", None)
        if not limits:
            environment["AGENTD_RATE_LIMITING"] = "off"
        return subprocess.Popen(
            [agentd, "--socket", path, "--socket-mode", "0666", "--database", database, "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, env=environment)

    # Setup without rate limits (100,000 appends would take the owner's write budget 17 minutes on an
    # older daemon), then the run with the shipped limits.
    daemon = start(limits=False)
    failures = []
    try:
        began = time.monotonic()
        builder = spawn("buildbranch", path, 0, 0, BRANCHER_UID)
        deep, fork = builder.communicate()[0].decode().strip().split(",")
        print(f"setup: a {BRANCH}-message branch in {time.monotonic() - began:.1f} s", flush=True)

        setup = subprocess.run([PYTHON, "-c", (
            "import sys; sys.path.insert(0, %r); import abuse; c = abuse.Client(%r); abuse.sign_in(c, 'good');"
            "print(c.result('chats.create', {'title': 'good'})['id']); abuse.sign_in(abuse.Client(%r), 'victim')"
        ) % (os.path.dirname(os.path.abspath(__file__)), path, path)], capture_output=True, text=True, preexec_fn=as_uid(GOOD_UID))
        if setup.returncode != 0:
            raise RuntimeError(f"good client setup: {setup.stderr}")
        good_chat = setup.stdout.strip()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        daemon = start(limits=True)
        Client(path).close()  # listening again

        idle = spawn("good", path, PHASE, good_chat, GOOD_UID)
        idle_out = json.loads(idle.communicate()[0])

        before_bytes = database_bytes(folder)
        abusers = [spawn("amplify", path, PHASE, 0, ABUSER_UID) for _ in range(AMPLIFIERS if "amplify" in ROLES_ON else 0)]
        abusers += [spawn(role, path, PHASE, 0, ABUSER_UID) for role in ("usernames", "descriptions", "guess") if role in ROLES_ON]
        abusers += [spawn("subscribe", path, PHASE + 5, i, ABUSER_UID + i) for i in range(16 if "subscribe" in ROLES_ON else 0)]
        selector = spawn("select", path, PHASE if "select" in ROLES_ON else 0, f"{deep},{fork}", BRANCHER_UID)
        time.sleep(2)   # let the subscriptions and the amplifiers get going before measuring
        loaded = spawn("good", path, PHASE, good_chat, GOOD_UID)
        peak_sampled = 0
        while loaded.poll() is None:
            peak_sampled = max(peak_sampled, rss_kib(daemon.pid, "VmRSS"))
            time.sleep(0.1)
        loaded_out = json.loads(loaded.communicate()[0])
        selects = json.loads(selector.communicate()[0] or b'{"selects": 0}')["selects"]
        for process in abusers:
            try:
                process.wait(timeout=PHASE + 30)
            except subprocess.TimeoutExpired:
                process.kill()
        growth = database_bytes(folder) - before_bytes
        alive = daemon.poll() is None
        peak = rss_kib(daemon.pid, "VmHWM") if alive else 0

        # Every acknowledged append is readable: the well-behaved user pages through its whole chat.
        acked = set(idle_out["acked"]) | set(loaded_out["acked"])
        check = subprocess.run([PYTHON, "-c", (
            "import sys, json; sys.path.insert(0, %r); import abuse; c = abuse.Client(%r);"
            "c.call('auth.login', {'username': 'good', 'password': abuse.PASSWORD}); seen = []; cursor = None\n"
            "while True:\n"
            "    p = {'chatId': %r, 'limit': 200}\n"
            "    if cursor: p['cursor'] = cursor\n"
            "    r = c.result('chats.messages.list', p); seen += [m['id'] for m in r['items']]; cursor = r.get('nextCursor')\n"
            "    if not cursor: break\n"
            "print(json.dumps(seen))"
        ) % (os.path.dirname(os.path.abspath(__file__)), path, good_chat)], capture_output=True, text=True, preexec_fn=as_uid(GOOD_UID))
        found = acked & set(json.loads(check.stdout)) if check.returncode == 0 else set()
        if check.returncode != 0:
            print(check.stderr, file=sys.stderr)

        idle_p50, idle_p99 = percentile(idle_out["latencies"], 0.5), percentile(idle_out["latencies"], 0.99)
        load_p50, load_p99 = percentile(loaded_out["latencies"], 0.5), percentile(loaded_out["latencies"], 0.99)
        ratio = load_p99 / idle_p99 if idle_p99 > 0 else float("inf")
        print(f"daemon peak RSS: {peak / 1024:.0f} MiB (VmHWM; sampled during the abuse {peak_sampled / 1024:.0f} MiB)")
        print(f"database growth during the abuse: {growth / 1048576:.1f} MiB")
        print(f"well-behaved client, {PACE:.0f} calls/s: idle p50 {idle_p50:.2f} ms p99 {idle_p99:.2f} ms"
              f" ({len(idle_out['latencies'])} calls); under abuse p50 {load_p50:.2f} ms p99 {load_p99:.2f} ms"
              f" ({len(loaded_out['latencies'])} calls); p99 ratio {ratio:.1f}x")
        print(f"branch selects of the {BRANCH}-deep branch during the abuse: {selects}")
        print(f"acknowledged appends readable afterwards: {len(found)}/{len(acked)}")
        print(f"daemon alive throughout: {'yes' if alive else 'NO'}")
        if not IS_ROOT:
            print("note: not root, every client ran as this uid (exempt from rate limits)")
        for ok, target in [(peak < 512 * 1024 and alive, "RSS < 512 MiB"), (ratio < 5, "p99 under abuse < 5x idle p99"),
                           (len(found) == len(acked), "nothing acknowledged lost"), (alive, "the daemon never exits")]:
            print(f"{'PASS' if ok else 'FAIL'}: {target}")
            if not ok:
                failures.append(target)
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        log.close()
        print(f"daemon log: {os.path.join(folder, 'agentd.log')}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] in ROLES:
        ROLES[sys.argv[1]](sys.argv[2], float(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(main())
