#!/usr/bin/env python3
"""hop_report.py: a proxy's own time on the critical path of each hop, from syscall tracepoints.

Reads `perf script --ns -F tid,time,event,trace` output of raw_syscalls:sys_enter/sys_exit
recorded on one proxy process, and the proxy's client-side and server-side socket fds.
For every wakeup (an epoll_wait that returns) it takes the first send-like syscall that
follows on the same thread: the time from the wakeup to that send is what the proxy itself
added to the hop before the bytes moved on (reading them, framing, deciding, relaying).
A send to a server fd is a client->server hop, a send to a client fd the way back.

Prints one TSV line per direction: label, direction, hops, median, p10, p90 (microseconds),
and the median time the send syscall itself took.
"""
import re
import statistics
import sys

EPOLL = {232, 281, 441}            # epoll_wait, epoll_pwait, epoll_pwait2
SEND = {1, 20, 44, 46, 307}        # write, writev, sendto, sendmsg, sendmmsg
LINE = re.compile(r'^\s*(\d+)\s+(\d+\.\d+):\s+raw_syscalls:sys_(enter|exit): NR (\d+)\s*\(?([0-9a-f]*)')


def fds(arg):
    return {int(x) for x in arg.split(',') if x}


def quantile(v, q):
    s = sorted(v)
    return s[min(len(s) - 1, int(q * len(s)))]


def main():
    if len(sys.argv) != 4:
        sys.exit('usage: hop_report.py LABEL CLIENT_FDS SERVER_FDS < perf-script-output')
    label, client, server = sys.argv[1], fds(sys.argv[2]), fds(sys.argv[3])
    woke = {}                      # tid -> time of the epoll_wait return not yet followed by a send
    sending = {}                   # tid -> (direction, enter time) of a send in progress
    hop = {'c2s': [], 's2c': []}
    send = {'c2s': [], 's2c': []}
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        tid, t, kind, nr = m.group(1), float(m.group(2)) * 1e6, m.group(3), int(m.group(4))
        if kind == 'exit':
            if nr in EPOLL:
                woke[tid] = t
            elif nr in SEND and tid in sending:
                d, t0 = sending.pop(tid)
                send[d].append(t - t0)
            continue
        if nr in EPOLL:
            woke.pop(tid, None)
        elif nr in SEND and m.group(5):
            fd = int(m.group(5), 16)
            d = 'c2s' if fd in server else 's2c' if fd in client else None
            if d is None:
                continue
            sending[tid] = (d, t)
            if tid in woke:
                hop[d].append(t - woke.pop(tid))
    for d in ('c2s', 's2c'):
        v = hop[d]
        if not v:
            print(f'{label}\t{d}\t0\tNA\tNA\tNA\tNA')
            continue
        sm = statistics.median(send[d]) if send[d] else float('nan')
        print(f'{label}\t{d}\t{len(v)}\t{statistics.median(v):.2f}\t{quantile(v, 0.1):.2f}\t'
              f'{quantile(v, 0.9):.2f}\t{sm:.2f}')


if __name__ == '__main__':
    main()
