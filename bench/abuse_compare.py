#!/usr/bin/env python3
"""bench/abuse_compare.py — does the one-process hostile side (abuse_hostile.py) attack at least as hard
as the per-process roles it replaced (bench/abuse.py at OLD_COMMIT, about 45 Python processes)?

Not a benchmark of the daemon: a check of the harness. Each hostile side runs alone (no well-behaved
client) for WARM + WINDOW seconds against the same release daemon, from the same copy of a set-up
database, with the daemon's /metrics on loopback. For each it prints:
  - what the daemon saw in the window (rpc_requests_total and rpc_errors_total deltas per method, so
    the same counter for both sides; connections open and live subscriptions, least and mean);
  - what the hostile side offered over the whole run, counted in its sockets: connects, bytes sent,
    lines sent (the old roles through a counting socket class, the new one from its own counters);
  - CPU seconds in the window: the daemon's and the hostile side's (all its processes).

Usage: bench/abuse_compare.py AGENTD   (as root; about 2 × (WARM + WINDOW) + 10 s; run it only on an
otherwise idle machine). Environment: ABUSE_BRANCH (default 2000 here), COMPARE_WARM (2),
COMPARE_WINDOW (6), OLD_COMMIT (7cd614d, the last commit with the per-process harness), COMPARE_SIDES
(old,new).
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("ABUSE_BRANCH", "2000")
sys.path.insert(0, HERE)
import abuse  # noqa: E402

WARM = float(os.environ.get("COMPARE_WARM", "2"))
WINDOW = float(os.environ.get("COMPARE_WINDOW", "6"))
OLD_COMMIT = os.environ.get("OLD_COMMIT", "7cd614d")

# Runs one old role with socket.socket replaced by a subclass that counts; prints the counts to stderr.
COUNTING_WRAPPER = r'''
import json, socket, sys, threading
counts = {"connects": 0, "bytes_sent": 0, "lines_sent": 0}
lock = threading.Lock()
class CountingSocket(socket.socket):
    def connect(self, address):
        super().connect(address)
        with lock: counts["connects"] += 1
    def sendall(self, data, *rest):
        # sendall as send calls, so that the bytes the socket took are counted even when it is cut
        with lock: counts["lines_sent"] += 1
        view = memoryview(data)
        while view:
            sent = self.send(view)
            with lock: counts["bytes_sent"] += sent
            view = view[sent:]
socket.socket = CountingSocket
sys.path.insert(0, sys.argv[1])
import abuse
try:
    abuse.ROLES[sys.argv[2]](sys.argv[3], float(sys.argv[4]), sys.argv[5])
except BaseException:
    counts["died"] = 1
    raise
finally:
    print("COUNTS " + json.dumps(counts), file=sys.stderr, flush=True)
'''


def scrape(port):
    """{(name, labels): value} from the daemon's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.match(r'^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$', line)
        if match:
            samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tree_cpu(pids):
    total = 0.0
    for pid in pids:
        try:
            total += abuse.cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def setup(agentd, folder):
    """The branch and the victim, without rate limits; returns 'deep,fork'."""
    path, database = os.path.join(folder, "agentd.sock"), os.path.join(folder, "agentd.db")
    environment = dict(os.environ, AGENTD_RATE_LIMITING="off")
    daemon = subprocess.Popen([agentd, "--socket", path, "--socket-mode", "0666", "--database", database, "--log-level", "error"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    try:
        builder = abuse.spawn("buildbranch", path, 0, 0, abuse.BRANCHER_UID)
        branch = builder.communicate()[0].decode().strip()
        victim = subprocess.run([abuse.PYTHON, "-c", "import sys; sys.path.insert(0, %r); import abuse; abuse.sign_in(abuse.Client(%r), 'victim')"
                                 % (HERE, path)], preexec_fn=abuse.as_uid(abuse.GOOD_UID))
        if victim.returncode != 0 or "," not in branch:
            raise RuntimeError("setup failed")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    return branch


def run_side(side, agentd, pristine, branch, old_dir):
    folder = tempfile.mkdtemp(prefix=f"agentd-compare-{side}-")
    os.chmod(folder, 0o711)
    for name in os.listdir(pristine):
        shutil.copy(os.path.join(pristine, name), folder)
    path, database = os.path.join(folder, "agentd.sock"), os.path.join(folder, "agentd.db")
    port = free_port()
    environment = dict(os.environ)
    environment.pop("AGENTD_RATE_LIMITING", None)
    daemon = subprocess.Popen([agentd, "--socket", path, "--socket-mode", "0666", "--database", database, "--log-level", "error",
                               "--metrics-listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    abuse.Client(path).close()
    seconds = WARM + WINDOW
    processes, hostile = [], None
    began = time.monotonic()
    try:
        if side == "old":
            wrapper = os.path.join(old_dir, "counting.py")

            def old(role, argument, uid, length=seconds):
                processes.append(subprocess.Popen([abuse.PYTHON, wrapper, old_dir, role, path, str(length), str(argument)],
                                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=abuse.as_uid(uid)))
            on = abuse.ROLES_ON if hasattr(abuse, "ROLES_ON") else set()
            for _ in range(abuse.AMPLIFIERS if "amplify" in on else 0):
                old("amplify", 0, abuse.ABUSER_UID)
            for role in ("usernames", "descriptions", "guess"):
                if role in on:
                    old(role, 0, abuse.ABUSER_UID)
            for i in range(16 if "subscribe" in on else 0):
                old("subscribe", i, abuse.ABUSER_UID + i)
            old("select", branch, abuse.BRANCHER_UID, seconds if "select" in on else 0)
            time.sleep(WARM)     # what the old bench/abuse.py waited before measuring
        else:
            hostile = abuse.spawn_hostile(path, branch)
            ready, _, _ = select.select([hostile.stdout], [], [], 60)
            line = hostile.stdout.readline().strip() if ready else b""
            set_up = time.monotonic() - began
            time.sleep(WARM)     # after the flood has started, as bench/abuse.py does
            hostile.stdin.write(b"measure\n")
            hostile.stdin.flush()
            processes.append(hostile)
        window_began = time.monotonic()
        before, daemon_cpu, hostile_cpu = scrape(port), abuse.cpu_seconds(daemon.pid), tree_cpu(p.pid for p in processes)
        gauges = []
        while time.monotonic() < window_began + WINDOW:
            time.sleep(0.5)
            now = scrape(port)
            gauges.append((now.get(("rpc_connections_open", ""), 0), now.get(("events_subscriptions_active", ""), 0)))
        after = scrape(port)
        daemon_cpu = abuse.cpu_seconds(daemon.pid) - daemon_cpu
        hostile_cpu = tree_cpu(p.pid for p in processes) - hostile_cpu
        elapsed = time.monotonic() - window_began
    finally:
        offered = {}
        if hostile is not None:
            report = abuse.stop_hostile(hostile)
        else:
            report = None
            for process in processes:
                try:
                    _, err = process.communicate(timeout=seconds + 30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    _, err = process.communicate()
                role = process.args[3]
                lines = [l for l in err.decode().splitlines() if l.startswith("COUNTS ")]
                counts = json.loads(lines[-1][7:]) if lines else {"died": 1}
                for key, value in counts.items():
                    offered.setdefault(role, {}).setdefault(key, 0)
                    offered[role][key] += value
        total = time.monotonic() - began
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)

    print(f"== {side}: {'about %d processes' % len(processes) if side == 'old' else 'one process'}"
          + (f", set up in {set_up:.1f} s ({line.decode() or 'not ready'})" if side == "new" else ""))
    print(f"  daemon saw in the window ({elapsed:.1f} s), calls/s by method (errors by code):")
    for (name, labels), value in sorted(after.items()):
        if name == "rpc_requests_total":
            delta = value - before.get((name, labels), 0)
            if delta:
                method = re.search(r'method="([^"]*)"', labels).group(1)
                errors = {re.search(r'code="([^"]*)"', l).group(1): v - before.get((n, l), 0) for (n, l), v in after.items()
                          if n == "rpc_errors_total" and f'method="{method}"' in l and v - before.get((n, l), 0)}
                print(f"    {method}: {delta / elapsed:.1f}/s" + (f" ({', '.join(f'{c} ×{n:.0f}' for c, n in errors.items())})" if errors else ""))
    connections = [c for c, _ in gauges] or [0]
    subscriptions = [s for _, s in gauges] or [0]
    print(f"  connections open {min(connections):.0f}–{sum(connections) / len(connections):.0f}, live subscriptions "
          f"{min(subscriptions):.0f}–{sum(subscriptions) / len(subscriptions):.0f} (least–mean)")
    print(f"  CPU seconds in the window: daemon {daemon_cpu:.2f}, hostile side {hostile_cpu:.2f}")
    if report:
        print(f"  offered, counted by the hostile process over the window ({report['seconds']:.1f} s):")
        for text in abuse.describe_roles(report):
            print("  " + text)
    for role, counts in sorted(offered.items()):
        print(f"  offered by old {role} over the whole run ({total:.1f} s): " + ", ".join(
            f"{value / total / 1048576:.2f} MiB/s taken" if key == "bytes_sent" else f"{key} {value / total:.1f}/s" if key != "died"
            else f"{value} processes died" for key, value in counts.items()))


def main():
    agentd = os.path.abspath(sys.argv[1])
    if os.getloadavg()[0] >= 3:
        print("note: load average above 3, the comparison is not worth much now", file=sys.stderr)
    old_dir = tempfile.mkdtemp(prefix="abuse-old-")
    os.chmod(old_dir, 0o755)     # the old roles run as other uids and must read their script
    for name in ("abuse.py", "rpcclient.py"):
        with open(os.path.join(old_dir, name), "wb") as file:
            file.write(subprocess.run(["git", "-C", HERE, "show", f"{OLD_COMMIT}:bench/{name}"], check=True, capture_output=True).stdout)
    with open(os.path.join(old_dir, "counting.py"), "w") as file:
        file.write(COUNTING_WRAPPER)
    for name in os.listdir(old_dir):
        os.chmod(os.path.join(old_dir, name), 0o644)
    pristine = tempfile.mkdtemp(prefix="agentd-compare-setup-")
    os.chmod(pristine, 0o711)
    try:
        branch = setup(agentd, pristine)
        print(f"machine: {os.cpu_count()} cores; branch of {abuse.BRANCH}; warm-up {WARM:.0f} s, window {WINDOW:.0f} s; "
              f"old = bench/abuse.py at {OLD_COMMIT}")
        for side in os.environ.get("COMPARE_SIDES", "old,new").split(","):
            run_side(side, agentd, pristine, branch, old_dir)
    finally:
        shutil.rmtree(old_dir, ignore_errors=True)
        shutil.rmtree(pristine, ignore_errors=True)


if __name__ == "__main__":
    main()
