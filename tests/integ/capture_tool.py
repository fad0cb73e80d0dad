#!/usr/bin/env python3
"""Helpers for t_capture_reasm.sh: a loopback echo exchange with known bytes, and pcap
doctoring (reorder / duplicate / drop / cut the start) on classic pcap files.

  capture_tool.py free-port
  capture_tool.py echo HOST PORT OUTPREFIX KIND   -> OUTPREFIX.c2s / OUTPREFIX.s2c expected
  capture_tool.py doctor IN OUT MODE PORT          -> prints facts about what it did
"""
import random
import socket
import struct
import sys
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def echo(host, port, prefix, kind):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    got_s2c = bytearray()

    def serve():
        c, _ = srv.accept()
        c.sendall(b"HELLO from server\n")
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
        c.close()

    t = threading.Thread(target=serve)
    t.start()
    rnd = random.Random(42)
    if kind == "small":
        msgs = [b"select 1;\n", b"x" * 100, b"hello world\n", bytes(range(256))]
    else:  # big: many segments in both directions
        msgs = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in (70000, 150000, 33333)]
    cl = socket.socket(fam, socket.SOCK_STREAM)
    cl.connect((host, port))
    sent = bytearray()
    for m in msgs:
        cl.sendall(m)
        sent += m
        time.sleep(0.05)
    cl.shutdown(socket.SHUT_WR)
    while True:
        b = cl.recv(65536)
        if not b:
            break
        got_s2c += b
    cl.close()
    t.join()
    srv.close()
    want_s2c = b"HELLO from server\n" + bytes(sent)
    if bytes(got_s2c) != want_s2c:
        sys.exit("echo exchange itself went wrong")
    open(prefix + ".c2s", "wb").write(bytes(sent))
    open(prefix + ".s2c", "wb").write(want_s2c)


def read_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit("not a classic pcap")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    pkts, off = [], 24
    while off + 16 <= len(data):
        ts1, ts2, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        pkts.append([ts1, ts2, orig, data[off + 16:off + 16 + incl]])
        off += 16 + incl
    return e, data[:24], linktype, pkts


def write_pcap(path, e, hdr, pkts):
    with open(path, "wb") as f:
        f.write(hdr)
        for ts1, ts2, orig, b in pkts:
            f.write(struct.pack(e + "IIII", ts1, ts2, len(b), orig) + b)


def tcp_info(linktype, b):
    """(sport, dport, seq, flags, payload_len) for Ethernet/IPv4|IPv6 TCP, else None."""
    if linktype != 1 or len(b) < 14:
        return None
    et, off = struct.unpack(">H", b[12:14])[0], 14
    if et == 0x0800:
        ihl = (b[off] & 15) * 4
        tot = struct.unpack(">H", b[off + 2:off + 4])[0]
        t, end = off + ihl, off + tot
    elif et == 0x86DD:
        plen = struct.unpack(">H", b[off + 4:off + 6])[0]
        t, end = off + 40, off + 40 + plen
    else:
        return None
    sp, dp, seq = struct.unpack(">HHI", b[t:t + 8])
    doff = (b[t + 12] >> 4) * 4
    return sp, dp, seq, b[t + 13], end - (t + doff)


def doctor(inp, out, mode, port):
    e, hdr, lt, pkts = read_pcap(inp)
    port = int(port)
    info = [tcp_info(lt, p[3]) for p in pkts]
    data_idx = [i for i, x in enumerate(info) if x and x[4] > 0]
    rnd = random.Random(7)
    if mode == "shuffle":  # swap neighbours, duplicate every third data packet
        order = list(range(len(pkts)))
        for k in range(0, len(data_idx) - 1, 2):
            a, b = data_idx[k], data_idx[k + 1]
            order[a], order[b] = order[b], order[a]
        res = []
        for n, i in enumerate(order):
            res.append(pkts[i])
            if i in data_idx and n % 3 == 0:
                res.append(pkts[i])
        write_pcap(out, e, hdr, res)
        print("packets", len(res))
    elif mode == "drop":  # drop one client data packet that is not the last one
        c2s = [i for i in data_idx if info[i][1] == port]
        victim = c2s[len(c2s) // 2] if len(c2s) > 2 else c2s[0]
        sp, dp, seq, fl, plen = info[victim]
        isn = next(x[2] for x in info if x and x[1] == port and x[3] & 2)
        write_pcap(out, e, hdr, [p for i, p in enumerate(pkts) if i != victim])
        # stream offset of the dropped bytes (SYN takes one sequence number)
        print("dropped_off", (seq - isn - 1) % (1 << 32), "dropped_len", plen)
    elif mode == "midstream":  # cut everything before the 2nd client data packet
        c2s = [i for i in data_idx if info[i][1] == port]
        cut = c2s[1]
        isn = next(x[2] for x in info if x and x[1] == port and x[3] & 2)
        s2c_cut = [x for x in info[cut:] if x and x[0] == port and x[4] > 0]
        sisn = next(x[2] for x in info if x and x[0] == port and x[3] & 2)
        write_pcap(out, e, hdr, pkts[cut:])
        print("c2s_from", (info[cut][2] - isn - 1) % (1 << 32),
              "s2c_from", (s2c_cut[0][2] - sisn - 1) % (1 << 32))
    elif mode == "pcapng":  # same packets, pcapng container
        write_pcapng(out, lt, pkts)
        print("packets", len(pkts))
    else:
        sys.exit("unknown mode")


def write_pcapng(path, linktype, pkts):
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    with open(path, "wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(1, struct.pack("<HHI", linktype, 0, 262144)))
        for ts1, ts2, orig, b in pkts:
            t = ts1 * 1000000 + ts2
            f.write(block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(b), orig) + b))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "free-port":
        free_port()
    elif cmd == "echo":
        echo(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "doctor":
        doctor(*sys.argv[2:6])
