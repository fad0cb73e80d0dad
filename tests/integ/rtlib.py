"""tests/integ/rtlib.py: helpers for the Python integration tests (the twin of lib.sh).

Proxy start/stop by pid, pass/fail counters with the closing "N passed, N failed" line,
a raw MySQL client (sockets only) for malformed-input tests, and a fake upstream."""
import atexit
import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

ENV = os.environ
RT_BIN = ENV.get("RT_BIN", "build/routetrace")
TEST_TMP = ENV.get("TEST_TMP", "/tmp")
MYSQL_PORT = int(ENV.get("MYSQL_PORT", "3306"))
USER = ENV.get("RT_NATIVE_USER", "rt_native")
PW = ENV.get("RT_NATIVE_PW", "native_pw")

passed = 0
failed = 0


def ok(name):
    global passed
    passed += 1
    print("ok   " + name, flush=True)


def fail(name, why=""):
    global failed
    failed += 1
    print("FAIL " + name + (": " + why if why else ""), flush=True)


def check(name, cond, why=""):
    ok(name) if cond else fail(name, why)


def summary():
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def root_sql(stmts):
    """Runs statements as root on the test server's socket (pymysql, imported here only)."""
    import pymysql
    c = pymysql.connect(unix_socket=os.environ["MYSQL_SOCK"], user="root")
    with c.cursor() as cur:
        for stmt in stmts:
            cur.execute(stmt)
    c.commit()
    c.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _kill_proxies():
    for p in Proxy.live:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_proxies)


class Proxy:
    """routetrace proxy on a free port; log in TEST_TMP; stopped by pid."""
    count = 0
    live = []  # every proxy started; killed at exit, whatever way the test ends

    def __init__(self, upstream=None, args=()):
        Proxy.count += 1
        self.port = free_port()
        self.log = os.path.join(TEST_TMP, "proxy.py%d.log" % Proxy.count)
        up = upstream or "127.0.0.1:%d" % MYSQL_PORT
        cmd = [RT_BIN, "proxy", "--listen", "127.0.0.1:%d" % self.port, "--upstream", up,
               "--log-level", "debug"] + list(args)
        # stdout to the log too: an inherited stdout would keep run.sh's $(...) open,
        # so a test that dies with its proxy still running would hang the suite
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        Proxy.live.append(self.proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("proxy did not start: " + self.text())

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait_log(self, needle, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return self.proc.returncode


# ---- raw protocol --------------------------------------------------------------------

def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_packet(sock):
    hdr = recv_exact(sock, 4)
    n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
    return hdr[3], recv_exact(sock, n)


def native_token(password, scramble):
    if not password:
        return b""
    h1 = hashlib.sha1(password.encode()).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(scramble + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def parse_greeting(p):
    """Returns (caps, scramble) of a HandshakeV10 payload."""
    if not p or p[0] != 10:
        raise ValueError("not a greeting: %r" % p[:16])
    i = p.index(b"\0", 1) + 1
    i += 4
    s1 = p[i:i + 8]
    i += 9
    caps = struct.unpack("<H", p[i:i + 2])[0]
    i += 2 + 1 + 2
    caps |= struct.unpack("<H", p[i:i + 2])[0] << 16
    i += 2
    alen = p[i]
    i += 1 + 10
    s2 = p[i:i + max(13, alen - 8)].rstrip(b"\0")
    return caps, s1 + s2


class RawClient:
    """A logged-in connection on which the test writes arbitrary bytes."""

    def __init__(self, port, login=True, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.settimeout(timeout)
        _, g = read_packet(self.sock)
        self.greeting = g
        if not login:
            return
        caps, scramble = parse_greeting(g)
        ccaps = 0x0200 | 0x8000 | 0x80000 | 0x1 | 0x2000 | 0x10000 | 0x20000
        tok = native_token(PW, scramble[:20])
        body = struct.pack("<IIB", ccaps, 1 << 24, 33) + b"\0" * 23
        body += USER.encode() + b"\0" + bytes([len(tok)]) + tok + b"mysql_native_password\0"
        self.sock.sendall(packet(1, body))
        _, r = read_packet(self.sock)
        if r[:1] != b"\0":
            raise RuntimeError("login failed: %r" % r)
        self.greeting_caps = caps

    def send(self, data):
        self.sock.sendall(data)

    def query(self, sql):
        self.sock.sendall(packet(0, b"\x03" + sql.encode()))

    def closed_within(self, seconds):
        """True if the peer closes (EOF or reset) within `seconds`, draining what comes."""
        self.sock.settimeout(seconds)
        deadline = time.time() + seconds
        try:
            while time.time() < deadline:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return False

    def close(self):
        self.sock.close()


def err_packet_message(payload):
    """(code, sqlstate, message) of an ERR payload, or None."""
    if not payload or payload[0] != 0xFF:
        return None
    code = struct.unpack("<H", payload[1:3])[0]
    if payload[3:4] == b"#":
        return code, payload[4:9].decode(), payload[9:].decode(errors="replace")
    return code, "", payload[3:].decode(errors="replace")


# ---- fake upstream ------------------------------------------------------------------

def greeting_payload(caps=0xF7FF | (0x81BF << 16), plugin=b"mysql_native_password"):
    p = b"\x0a" + b"5.5.5-10.11.0-fake\0" + struct.pack("<I", 7) + b"abcdefgh" + b"\0"
    p += struct.pack("<H", caps & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
    p += struct.pack("<H", caps >> 16) + bytes([21]) + b"\0" * 6 + b"\0\0\0\0"
    p += b"ijklmnopqrst\0" + plugin + b"\0"
    return p


class FakeUpstream:
    """A TCP server whose connections each run the next queued behaviour; with the queue
    empty a connection is relayed to the real MariaDB (the healthy sessions)."""

    def __init__(self):
        self.port = free_port()
        self.modes = []
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def push(self, fn):
        with self.lock:
            self.modes.append(fn)

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                fn = self.modes.pop(0) if self.modes else None
            threading.Thread(target=self._run, args=(c, fn), daemon=True).start()

    def _run(self, c, fn):
        try:
            if fn is None:
                relay(c, socket.create_connection(("127.0.0.1", MYSQL_PORT)))
            else:
                fn(c)
        except Exception:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass


def relay(a, b):
    def pump(x, y):
        try:
            while True:
                d = x.recv(65536)
                if not d:
                    break
                y.sendall(d)
        except OSError:
            pass
        for s in (x, y):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join(5)
    b.close()
