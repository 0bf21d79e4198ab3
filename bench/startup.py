#!/usr/bin/env python3
"""Start-to-READY=1 time and idle RSS of agentd on an existing database.

Usage: bench/startup.py AGENTD_BINARY [RUNS]
Each run starts the daemon with NOTIFY_SOCKET pointing at a datagram socket this script reads,
measures from just before exec to the READY=1 datagram, reads VmRSS from /proc once the daemon has
served a ping and sat idle for one second, then stops it with SIGTERM. The database is created by a
first, unmeasured run, so every measured start opens an existing, migrated database.
"""
import os, signal, socket, statistics, subprocess, sys, tempfile, time

def ping(path, deadline):
    while time.monotonic() < deadline:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"system.ping"}\n')
            reply = s.recv(4096)
            s.close()
            return b'"pong"' in reply
        except OSError:
            time.sleep(0.005)
    return False

def one_run(binary, folder, measure=True):
    notify_path = os.path.join(folder, "notify.sock")
    if os.path.exists(notify_path):
        os.unlink(notify_path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    sock = os.path.join(folder, "agentd.sock")
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, XDG_CONFIG_HOME=os.path.join(folder, "config"))
    start = time.monotonic()
    process = subprocess.Popen([binary, "--socket", sock, "--database", os.path.join(folder, "agentd.sqlite"),
                                "--log-level", "warning"], env=env, stderr=subprocess.DEVNULL)
    ready_ms = None
    while ready_ms is None:
        message = notify.recv(4096).decode()
        if "READY=1" in message:
            ready_ms = (time.monotonic() - start) * 1000
    assert ping(sock, time.monotonic() + 5), "no pong after READY=1"
    time.sleep(1.0)  # idle, so the figure is the resting footprint
    with open(f"/proc/{process.pid}/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, "agentd did not exit 0"
    notify.close()
    return ready_ms, rss_kb / 1024

def main():
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with tempfile.TemporaryDirectory(prefix="agentd-startup.") as folder:
        one_run(binary, folder)  # creates and migrates the database
        results = [one_run(binary, folder) for _ in range(runs)]
    ready = [r[0] for r in results]
    rss = [r[1] for r in results]
    print(f"start to READY=1 (existing database), {runs} runs: median {statistics.median(ready):.1f} ms, "
          f"min {min(ready):.1f} ms, max {max(ready):.1f} ms   (target <= 100 ms)")
    print(f"idle RSS after one ping: median {statistics.median(rss):.1f} MB, max {max(rss):.1f} MB   (target <= 30 MB)")

if __name__ == "__main__":
    main()
