"""bench/rpcclient.py — one connection to agentd's socket for the Python bench scripts (crash.py,
abuse.py): newline-delimited JSON-RPC, one call at a time, or pipelined with send/read."""
import json
import socket
import time


class ProtocolViolation(Exception):
    """The daemon answered what it must not: a reply to another call, or an error where a result
    was due."""


class Client:
    def __init__(self, path, timeout=30, read_timeout=60):
        """Connects to `path`, retrying for `timeout` seconds while the daemon starts."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(read_timeout)
        self.buffer = b""
        self.next_id = 0

    def send(self, method, params=None):
        """Sends a call without waiting; returns its id."""
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            request["params"] = params
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        return self.next_id

    def read(self):
        """The next message, parsed; raises OSError/EOFError when the daemon goes away."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None):
        """The reply to a call. Notifications (no id) that arrive first are skipped; a reply to
        another call is a violation: calls here are one at a time."""
        wanted = self.send(method, params)
        while True:
            reply = self.read()
            if "id" not in reply:
                continue
            if reply["id"] != wanted:
                raise ProtocolViolation(f"reply for id {reply['id']} to call {wanted}: {reply}")
            return reply

    def result(self, method, params=None):
        reply = self.call(method, params)
        if "result" not in reply:
            raise ProtocolViolation(f"{method} {params} failed: {reply}")
        return reply["result"]

    def close(self):
        self.sock.close()
