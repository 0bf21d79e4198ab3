#!/usr/bin/env python3
"""bench/abuse.py — the release daemon under every abuse of issue 17 at once, beside a well-behaved client.

The daemon runs with its shipped limits (rate limiting on) on a socket that other uids may open. Then:

  1. setup (rate limits off): a user (uid BRANCHER_UID) builds a chat whose branch is BRANCH messages
     deep, with a second root beside it; a well-behaved user (uid GOOD_UID) registers;
  2. idle: the well-behaved client appends and reads at a steady pace for PHASE seconds (its idle p50/p99);
  3. abuse: the same client, while ONE hostile process (bench/abuse_hostile.py, non-blocking sockets,
     each connection made as its role's uid) at once:
       - sends batches of 1,000 rpc.discover calls and never reads the replies (AMPLIFIERS connections),
       - logs in with usernames of 8 MiB,
       - creates modules with 1 MiB descriptions,
       - holds 64-pattern subscriptions on SUBSCRIBERS connections (16 uids),
       - guesses a password with 8 parallel wrong logins,
     and the branch's user selects back and forth between the BRANCH-deep branch (by its root, a
     walk of BRANCH levels down) and the second root. The hostile side starts 2 s before the client
     and runs until it has finished;
  4. check: every append the well-behaved client saw acknowledged is readable, and the daemon never exited.

It prints the daemon's peak RSS (VmHWM), the database's growth during the abuse, the well-behaved
client's p50/p99 idle and under abuse, each hostile role's achieved rate over the client's loaded phase,
the CPU seconds the daemon, the hostile process and the client used in that phase, and the acknowledged
writes found; then PASS or FAIL for each target (RSS < 512 MiB, p99 under abuse < 5x idle p99, nothing
acknowledged lost, the daemon alive). Exit status 0 when every target is met.

Usage: bench/abuse.py AGENTD     (bench/abuse.sh builds agentd and calls this; must run as root to
switch uids: without root every client runs as this uid, which the daemon exempts from rate limits)
Environment: ABUSE_PHASE (seconds, default 10), ABUSE_BRANCH (default 100000), ABUSE_AMPLIFIERS (24),
ABUSE_SUBSCRIBERS (256), ABUSE_PACE (well-behaved calls per second, default 60), ABUSE_ROLES (which
abuses run, comma-separated: amplify,usernames,descriptions,subscribe,guess,select — all by default),
ABUSE_AMPLIFY_CYCLE (seconds an amplifier stays blocked before it reconnects, default 5; 0: never).
"""
import json
import select
import os
import signal
import subprocess
import sys
import tempfile
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
AMPLIFY_CYCLE = float(os.environ.get("ABUSE_AMPLIFY_CYCLE", "5"))
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


# --- the well-behaved client and the setup, each run as `abuse.py ROLE SOCKET SECONDS ARG` in its own
# process as its user's uid (the hostile roles are bench/abuse_hostile.py) ------------------------------

def role_good(path, seconds, chat_id):
    """Appends and reads at PACE calls/s; prints one JSON line: latencies (ms) and acknowledged ids."""
    client = Client(path)
    client.call("auth.login", {"username": "good", "password": PASSWORD})
    latencies, acked = [], []
    interval = 1.0 / PACE
    cpu_before = os.times()
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
    cpu = os.times()
    print(json.dumps({"latencies": latencies, "acked": acked,
                      "cpu": cpu.user + cpu.system - cpu_before.user - cpu_before.system}))


def role_build_branch(path, _seconds, _):
    """Setup, as BRANCHER_UID: a chat with a BRANCH-deep branch and a second root; prints both roots."""
    client = Client(path)
    sign_in(client, "brancher")
    chat = client.result("chats.create", {"title": "long branch"})["id"]
    deep, fork = build_branch(client, chat)
    print(f"{deep},{fork}")


ROLES = {"good": role_good, "buildbranch": role_build_branch}


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


def cpu_seconds(pid):
    """utime + stime of a running process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn_hostile(path, branch):
    """The hostile process, as root (it connects as each role's uid); `measure` on its stdin starts
    its counted window, end of input stops it."""
    command = [PYTHON, os.path.join(os.path.dirname(os.path.abspath(__file__)), "abuse_hostile.py"), path, branch]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_hostile(hostile):
    """Ends the hostile process's input (communicate closes it); returns its report (or None, its
    error shown)."""
    try:
        out, err = hostile.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        hostile.kill()
        out, err = hostile.communicate()
    if hostile.returncode != 0 or not out.strip():
        print(f"hostile process failed ({hostile.returncode}): {err.decode()[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out)


def describe_roles(report):
    """One line per hostile role: what it achieved over the measured window."""
    seconds = report["seconds"]
    lines = []
    for name, role in report["roles"].items():
        c = role["counts"]
        held = f"{role['held_min']}–{role['held_mean']:.0f} connections held (least–mean)"
        errors = ", ".join(f"{code} ×{n}" for code, n in sorted(role["errors"].items(), key=lambda item: -item[1])[:4])
        rate = {
            "amplify": f"{c['batches'] / seconds:.1f} batches/s of 1,000 rpc.discover ({c['bytes_sent'] / seconds / 1048576:.2f} MiB/s taken by the socket;"
                       f" since they connected {role['totals']['batches']} batches, {role['totals']['bytes_sent'] / 1048576:.1f} MiB), {c['cuts']} cut,"
                       f" {c['cycles']} closed and opened again after about {AMPLIFY_CYCLE:g} s blocked",
            "usernames": f"{c['calls'] / seconds:.1f} logins/s of 8 MiB offered ({c['bytes_sent'] / seconds / 1048576:.2f} MiB/s taken), "
                         f"{c['replies']} answered, {c['cuts']} cut",
            "descriptions": f"{c['calls'] / seconds:.1f} modules.create/s of 1 MiB ({c['bytes_sent'] / seconds / 1048576:.2f} MiB/s taken), "
                            f"{c['replies']} answered",
            "subscribe": f"{role['ready_min']}–{role['ready_mean']:.0f} subscriptions of 64 patterns live (least–mean), "
                         f"{c['notifications']} notifications read",
            "guess": f"{c['replies'] / seconds:.1f} wrong logins answered/s",
            "select": f"{report['selects'] / seconds:.1f} selects/s ({report['selects']} done), {c['calls'] / seconds:.1f} calls/s",
        }[name]
        lines.append(f"  {name}: {held}; {rate}" + (f"; errors {errors}" if errors else ""))
    return lines


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
    hostile = None
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
        hostile = spawn_hostile(path, f"{deep},{fork}")
        # The roles that sign in set up first (256 subscriptions take 32 password hashes); once the
        # flood has started, 2 s to get going before measuring, as with the per-process roles.
        hostile_began = time.monotonic()
        ready, _, _ = select.select([hostile.stdout], [], [], 60)
        setup_line = hostile.stdout.readline().strip() if ready else b""
        if setup_line != b"ready":
            print(f"hostile process not set up after {time.monotonic() - hostile_began:.0f} s; measuring anyway", file=sys.stderr)
        time.sleep(2)
        hostile.stdin.write(b"measure\n")
        hostile.stdin.flush()
        daemon_cpu = cpu_seconds(daemon.pid)
        loaded_began = time.monotonic()
        loaded = spawn("good", path, PHASE, good_chat, GOOD_UID)
        peak_sampled = 0
        while loaded.poll() is None:
            peak_sampled = max(peak_sampled, rss_kib(daemon.pid, "VmRSS"))
            time.sleep(0.1)
        loaded_seconds = time.monotonic() - loaded_began
        daemon_cpu = cpu_seconds(daemon.pid) - daemon_cpu if daemon.poll() is None else float("nan")
        hostile_report = stop_hostile(hostile)   # the hostile side ran until the client finished
        loaded_out = json.loads(loaded.communicate()[0])
        selects = hostile_report["selects"] if hostile_report else 0
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
        if hostile_report:
            setup = hostile_report["setup_seconds"]
            print(f"hostile roles over the loaded phase ({hostile_report['seconds']:.1f} s, one process;"
                  f" signed in and subscribed in {f'{setup:.1f} s' if setup is not None else 'NOT set up'}, then 2 s of flood before it):")
            for text in describe_roles(hostile_report):
                print(text)
        hostile_cpu = f"{hostile_report['cpu_window']:.2f}" if hostile_report else "?"
        print(f"CPU seconds in the loaded phase ({loaded_seconds:.1f} s x {os.cpu_count()} cores = {loaded_seconds * os.cpu_count():.1f}):"
              f" daemon {daemon_cpu:.2f}, hostile process {hostile_cpu}, well-behaved client {loaded_out.get('cpu', float('nan')):.2f}")
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
        if hostile is not None and hostile.poll() is None:
            hostile.kill()
            hostile.wait()
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
