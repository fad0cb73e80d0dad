#!/usr/bin/python3
"""Bad input from either side: malformed and truncated packets, wrong sequence ids, a
0xFFFFFF length with garbage, bytes that are not MySQL (an HTTP request), a fake upstream
sending garbage, a non-MySQL greeting, closing mid-response.  Each time: that session is
closed with a logged reason, the proxy stays up, and a healthy session opened before
keeps working."""
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pymysql  # noqa: E402
import rtlib  # noqa: E402
from rtlib import RawClient, check, packet  # noqa: E402


def healthy(port):
    return pymysql.connect(host="127.0.0.1", port=port, user=rtlib.USER, password=rtlib.PW,
                           database="rt_test", read_timeout=10)


def healthy_works(h, name, proxy):
    try:
        with h.cursor() as cur:
            cur.execute("SELECT 6 * 7, REPEAT('h', 100)")
            row = cur.fetchone()
        check(name + ": parallel healthy session still works", row == (42, "h" * 100), repr(row))
    except Exception as e:
        rtlib.fail(name + ": parallel healthy session still works", repr(e))
    check(name + ": proxy still running", proxy.alive())


def client_side():
    p = rtlib.Proxy()
    h = healthy(p.port)

    def case(name, action, reason_substr):
        before = p.text().count("session close")
        try:
            c = action()
        except Exception as e:
            rtlib.fail(name, "client action raised %r" % e)
            return
        if c is not None:
            check(name + ": session closed by the proxy", c.closed_within(10))
            c.close()
        deadline = time.time() + 10
        while time.time() < deadline and p.text().count("session close") <= before:
            time.sleep(0.05)
        closes = [l for l in p.text().splitlines() if "session close" in l][before:]
        check(name + ": close logged with reason",
              any(reason_substr in l for l in closes), "closes: %r" % closes[-2:])
        healthy_works(h, name, p)

    def http_after_greeting():
        c = RawClient(p.port, login=False)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        return c

    def http_immediately():
        s = socket.create_connection(("127.0.0.1", p.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl\r\n\r\n" * 3)
        c = RawClient.__new__(RawClient)
        c.sock = s
        return c

    def truncated_login():
        c = RawClient(p.port, login=False)
        c.send(packet(1, b"\x85\xa6\x0f\x00")[:4] + b"\x85\xa6")  # header says 4, 2 sent
        c.sock.shutdown(socket.SHUT_WR)
        return c

    def huge_login():
        c = RawClient(p.port, login=False)
        c.send(b"\xff\xff\xff\x01" + os.urandom(70000))
        return c

    def huge_length_garbage_after_login():
        c = RawClient(p.port)
        c.send(b"\xff\xff\xff\x00\x03" + os.urandom(1 << 16))
        c.sock.shutdown(socket.SHUT_WR)
        return c

    def wrong_seq():
        c = RawClient(p.port)
        c.send(packet(7, b"\x03SELECT 1"))
        return c

    def garbage_login():
        c = RawClient(p.port, login=False)
        c.send(packet(1, os.urandom(40)))
        return c

    def empty_command():
        c = RawClient(p.port)
        c.send(packet(0, b""))
        return c

    case("HTTP request instead of a login", http_after_greeting, "reason=")
    case("HTTP request before the greeting", http_immediately, "reason=")
    case("truncated login packet then EOF", truncated_login, "reason=\"client")
    case("login packet with length 0xFFFFFF", huge_login, "not MySQL")
    case("0xFFFFFF length + garbage after login, then EOF", huge_length_garbage_after_login,
         "reason=")
    case("command with a wrong sequence id", wrong_seq, "reason=")
    case("random bytes as the login packet", garbage_login, "reason=")
    case("empty command packet", empty_command, "reason=")
    # A truncated COM_STMT_EXECUTE is the server's to judge: it answers ERR, and the
    # session goes on (the proxy neither hides the ERR nor closes the session).
    try:
        c = RawClient(p.port)
        c.send(packet(0, b"\x17\x01\x00"))
        _, r = rtlib.read_packet(c.sock)
        err = rtlib.err_packet_message(r)
        check("truncated COM_STMT_EXECUTE: server ERR reaches the client", err is not None,
              repr(r))
        c.query("SELECT 5")
        _, r = rtlib.read_packet(c.sock)
        check("truncated COM_STMT_EXECUTE: session still usable", r == b"\x01", repr(r))
        c.close()
    except Exception as e:
        rtlib.fail("truncated COM_STMT_EXECUTE", repr(e))
    healthy_works(h, "truncated COM_STMT_EXECUTE", p)

    rnd = random.Random(1234)
    for i in range(12):
        blob = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000)))

        def garbage(blob=blob):
            c = RawClient(p.port)
            c.send(blob)
            c.sock.shutdown(socket.SHUT_WR)
            return c
        case("random garbage #%d after login" % i, garbage, "reason=")
    h.close()
    check("client side: proxy exits 0 on SIGTERM", p.stop() == 0)


def server_side():
    fake = rtlib.FakeUpstream()
    p = rtlib.Proxy(upstream="127.0.0.1:%d" % fake.port)
    h = healthy(p.port)

    def run(name, behaviour, expect_err=None, reason=None):
        fake.push(behaviour)
        before = p.text().count("session close")
        try:
            s = socket.create_connection(("127.0.0.1", p.port), 5)
            s.settimeout(10)
            seq, first = rtlib.read_packet(s)
            err = rtlib.err_packet_message(first)
            if expect_err is not None:
                check(name + ": client gets ERR naming the problem",
                      err is not None and err[0] == 1105 and expect_err in err[2] and seq == 0,
                      repr(first[:120]))
            else:
                # a greeting passed: try to log in and query; anything but a hang is fine
                c = RawClient.__new__(RawClient)
                c.sock = s
                body = struct.pack("<IIB", 0x2 | 0x200 | 0x8000 | 0x80000, 1 << 24, 33)
                body += b"\0" * 23 + b"u\0\0mysql_native_password\0"
                s.sendall(packet(1, body))
                try:
                    rtlib.read_packet(s)
                    c.query("SELECT 1")
                except (EOFError, OSError):
                    pass
                check(name + ": client connection closed", c.closed_within(10))
            s.close()
        except Exception as e:
            rtlib.fail(name, repr(e))
        deadline = time.time() + 10
        while time.time() < deadline and p.text().count("session close") <= before:
            time.sleep(0.05)
        closes = [l for l in p.text().splitlines() if "session close" in l][before:]
        if reason:
            check(name + ": close logged with reason", any(reason in l for l in closes),
                  repr(closes[-2:]))
        healthy_works(h, name, p)

    def http_server(c):
        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.5)

    def bad_protocol_byte(c):
        c.sendall(packet(0, b"\x09" + b"x" * 60))
        time.sleep(0.5)

    def truncated_greeting(c):
        c.sendall(packet(0, b"\x0a5.5.5-fake\0\x01\x00"))
        time.sleep(0.5)

    def huge_greeting_len(c):
        c.sendall(b"\xff\xff\xff\x00" + b"\x0a" * 1000)
        time.sleep(0.5)

    def greeting_then_close(c):
        c.sendall(packet(0, rtlib.greeting_payload()))
        rtlib.read_packet(c)

    def close_mid_result(c):
        c.sendall(packet(0, rtlib.greeting_payload()))
        rtlib.read_packet(c)
        c.sendall(packet(2, b"\x00\x00\x00\x02\x00\x00\x00"))
        rtlib.read_packet(c)
        # column count 1, one column definition, then half a row and close
        c.sendall(packet(1, b"\x01") + packet(2, b"\x03def\0\0\0\x011\0\x0c\x3f\0\x01\0\0\0\x08\x81\0\0\0\0"))
        c.sendall(b"\x10\x00\x00\x03\x05ab")
        time.sleep(0.2)

    def garbage_after_login(c):
        c.sendall(packet(0, rtlib.greeting_payload()))
        rtlib.read_packet(c)
        c.sendall(packet(2, b"\x00\x00\x00\x02\x00\x00\x00"))
        rtlib.read_packet(c)
        c.sendall(os.urandom(5000))
        time.sleep(0.5)

    def err_instead_of_greeting(c):
        c.sendall(packet(0, b"\xff\x10\x04Too many connections"))

    run("upstream speaks HTTP", http_server, expect_err="did not send a MySQL greeting",
        reason="did not send a MySQL greeting")
    run("upstream greeting with protocol byte 9", bad_protocol_byte,
        expect_err="did not send a MySQL greeting")
    run("upstream sends a truncated greeting", truncated_greeting,
        expect_err="malformed greeting")
    run("upstream greeting length 0xFFFFFF", huge_greeting_len,
        expect_err="did not send a MySQL greeting")
    run("upstream closes after the login", greeting_then_close, reason="upstream closed")
    run("upstream closes mid-result", close_mid_result, reason="reason=")
    run("upstream sends garbage after login", garbage_after_login, reason="reason=")
    # MariaDB-style ERR in place of the greeting passes through untouched.
    fake.push(err_instead_of_greeting)
    try:
        s = socket.create_connection(("127.0.0.1", p.port), 5)
        s.settimeout(5)
        seq, first = rtlib.read_packet(s)
        check("ERR instead of a greeting reaches the client unchanged",
              first == b"\xff\x10\x04Too many connections", repr(first))
        s.close()
    except Exception as e:
        rtlib.fail("ERR instead of a greeting reaches the client unchanged", repr(e))
    h.close()
    check("server side: proxy exits 0 on SIGTERM", p.stop() == 0)


client_side()
server_side()
rtlib.summary()
