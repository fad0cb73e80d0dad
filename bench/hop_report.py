#!/usr/bin/env python3
"""hop_report.py: a proxy's own time on the critical path of each hop, from syscall tracepoints.

hop_report.py window LABEL CLIENT_FDS SERVER_FDS < perf-script-output
    Reads `perf script --ns -F tid,time,event,trace` output of raw_syscalls:sys_enter/sys_exit
    recorded on one proxy process. For every wakeup (an epoll_wait that returns) it takes the
    first send that follows on the same thread: the time from the wakeup to that send is what
    the proxy itself added to the hop (reading, framing, deciding, relaying). A send to a server
    fd is a client->server hop (c2s), a send to a client fd the way back (s2c). Prints one TSV
    line per direction: LABEL, direction, hops, median microseconds (NA when none).
    LABEL is "test<TAB>ps<TAB>target<TAB>repeat".

hop_report.py table TARGETS < window-lines
    The summary: per test, ps mode and direction, each target's median over its windows; a
    "both" row adding the two directions (one statement's round trip); and each target's
    figure minus the first target's.
"""
import re
import statistics
import sys

EPOLL = {232, 281, 441}            # epoll_wait, epoll_pwait, epoll_pwait2 (x86_64)
SEND = {1, 20, 44, 46}             # write, writev, sendto, sendmsg
LINE = re.compile(r'^\s*(\d+)\s+(\d+\.\d+):\s+raw_syscalls:sys_(enter|exit): NR (\d+)\s*\(?([0-9a-f]*)')
DIRS = ('c2s', 's2c')


def window(label, client, server):
    woke = {}                      # tid -> time of an epoll_wait return not yet followed by a send
    hop = {d: [] for d in DIRS}
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        tid, t, kind, nr = m.group(1), float(m.group(2)) * 1e6, m.group(3), int(m.group(4))
        if nr in EPOLL:
            if kind == 'exit':
                woke[tid] = t
            else:
                woke.pop(tid, None)
        elif kind == 'enter' and nr in SEND and m.group(5) and tid in woke:
            fd = int(m.group(5), 16)
            d = 'c2s' if fd in server else 's2c' if fd in client else None
            if d:
                hop[d].append(t - woke.pop(tid))
    for d in DIRS:
        v = hop[d]
        print(f'{label}\t{d}\t{len(v)}\t' + (f'{statistics.median(v):.2f}' if v else 'NA'))


def table(targets):
    medians, hops, confs = {}, {}, []
    for line in sys.stdin:
        test, ps, target, _rep, d, n, med = line.rstrip('\n').split('\t')
        if (test, ps) not in confs:
            confs.append((test, ps))
        if med != 'NA':
            medians.setdefault((test, ps, target, d), []).append(float(med))
            hops[(test, ps, d)] = hops.get((test, ps, d), 0) + int(n)
    cell = lambda x: 'NA' if x is None else f'{x:.2f}'
    diff = lambda x, base: 'NA' if x is None or base is None else f'{x - base:+.2f}'
    print(f'{"test":<18} {"ps":<8} {"hop":<5}' + ''.join(f' {t:>10}' for t in targets) +
          ''.join(f' {t + "-" + targets[0]:>14}' for t in targets[1:]) +
          '   (median us from wakeup to send; hops traced)')
    for test, ps in confs:
        rows = {}
        for d in DIRS:
            got = [medians.get((test, ps, t, d)) for t in targets]
            rows[d] = [statistics.median(v) if v else None for v in got]
        rows['both'] = [None if a is None or b is None else a + b for a, b in zip(rows['c2s'], rows['s2c'])]
        for d, m in rows.items():
            tail = f'   ({hops.get((test, ps, d), 0)})' if d in DIRS else ''
            print(f'{test:<18} {ps:<8} {d:<5}' + ''.join(f' {cell(x):>10}' for x in m) +
                  ''.join(f' {diff(x, m[0]):>14}' for x in m[1:]) + tail)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == 'window':
        fds = lambda arg: {int(x) for x in arg.split(',') if x}
        window(sys.argv[2], fds(sys.argv[3]), fds(sys.argv[4]))
    elif len(sys.argv) == 3 and sys.argv[1] == 'table':
        table(sys.argv[2].split())
    else:
        sys.exit('usage: hop_report.py window LABEL CLIENT_FDS SERVER_FDS < perf-script-output\n'
                 '       hop_report.py table "TARGET..." < window-lines')


if __name__ == '__main__':
    main()
