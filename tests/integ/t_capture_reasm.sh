#!/usr/bin/env bash
# t_capture_reasm.sh: records real loopback TCP exchanges with tcpdump, reads them back
# through pcap_src + pkt + reasm (tests/integ/reasm_dump) and checks the exact byte
# streams per direction; then replays doctored copies (reordered + duplicated, one
# segment dropped, capture started mid-session) and checks the gap and midstream paths.
# Env: RT_BUILD (build dir, default build), TEST_TMP (scratch dir, default mktemp).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${RT_BUILD:-${BUILD:-build}}
[ -d "$build" ] && build=$(cd "$build" && pwd)
dump=$build/tests/integ/reasm_dump
tool="python3 $here/capture_tool.py"
tmp=${TEST_TMP:-$(mktemp -d)}
tmp=$tmp/capture_reasm
mkdir -p "$tmp"
pass=0; fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }
tcpdump_pid=

cleanup() { [ -n "$tcpdump_pid" ] && kill "$tcpdump_pid" 2>/dev/null; }
trap cleanup EXIT

if [ ! -x "$dump" ]; then
  echo "FAIL setup: $dump not built"; echo "0 passed, 1 failed"; exit 1
fi
if ! command -v tcpdump >/dev/null; then
  echo "FAIL setup: tcpdump not installed"; echo "0 passed, 1 failed"; exit 1
fi

# record NAME HOST KIND: tcpdump on lo around one echo exchange -> $tmp/NAME.pcap + expected
record() {
  local name=$1 host=$2 kind=$3 port log
  port=$($tool free-port)
  log=$tmp/$name.tcpdump.log
  tcpdump -i lo -U --immediate-mode -n -s 262144 -w "$tmp/$name.pcap" "tcp port $port" 2>"$log" &
  tcpdump_pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.05; done
  if ! $tool echo "$host" "$port" "$tmp/$name.want" "$kind"; then
    kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null; tcpdump_pid=; return 1
  fi
  sleep 0.5
  kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null; tcpdump_pid=
  echo "$port" >"$tmp/$name.port"
}

# replay NAME PCAP OUTDIR [extra reasm_dump args]: runs reasm_dump, output in OUTDIR/out
replay() {
  local name=$1 pcap=$2 out=$3; shift 3
  rm -rf "$out"; mkdir -p "$out"
  "$dump" -r "$pcap" -p "$(cat "$tmp/$name.port")" -o "$out" "$@" >"$out/out" 2>&1
}

field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" "$2" | head -1; }

# case_exact NAME HOST KIND: streams equal, one flow, closed by FIN, no gaps
case_exact() {
  local name=$1 out
  out=$tmp/$name.out
  if ! record "$name" "$2" "$3"; then bad "$name" "recording failed"; return; fi
  if ! replay "$name" "$tmp/$name.pcap" "$out"; then bad "$name" "reasm_dump failed: $(tail -3 "$out/out")"; return; fi
  if [ "$(grep -c '^flow ' "$out/out")" != 1 ]; then bad "$name" "expected one flow: $(cat "$out/out")"; return; fi
  cmp -s "$out/1.c2s" "$tmp/$name.want.c2s" || { bad "$name" "client stream differs"; return; }
  cmp -s "$out/1.s2c" "$tmp/$name.want.s2c" || { bad "$name" "server stream differs"; return; }
  grep -q 'midstream=0 close=fin' "$out/out" || { bad "$name" "not a clean FIN close: $(head -1 "$out/out")"; return; }
  [ "$(field gaps "$out/out")" = 0 ] || { bad "$name" "gaps reported"; return; }
  ok "$name ($(stat -c %s "$tmp/$name.want.c2s")+$(stat -c %s "$tmp/$name.want.s2c") bytes, $(field packets "$out/out") packets)"
}

case_exact small_v4 127.0.0.1 small
case_exact big_v4 127.0.0.1 big
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
  case_exact big_v6 ::1 big
else
  bad big_v6 "no IPv6 loopback"
fi

# Doctored copies of big_v4.
if [ -f "$tmp/big_v4.pcap" ]; then
  name=shuffled; out=$tmp/$name.out; cp "$tmp/big_v4.port" "$tmp/$name.port"
  $tool doctor "$tmp/big_v4.pcap" "$tmp/$name.pcap" shuffle "$(cat "$tmp/$name.port")" >/dev/null
  if replay "$name" "$tmp/$name.pcap" "$out" && cmp -s "$out/1.c2s" "$tmp/big_v4.want.c2s" &&
     cmp -s "$out/1.s2c" "$tmp/big_v4.want.s2c" && [ "$(field gaps "$out/out")" = 0 ] &&
     [ "$(field ooo "$out/out")" -gt 0 ] && [ "$(field retrans_bytes "$out/out")" -gt 0 ] &&
     [ "$(field conflicts "$out/out")" = 0 ]; then
    ok "$name (ooo=$(field ooo "$out/out") retrans_bytes=$(field retrans_bytes "$out/out"))"
  else
    bad "$name" "$(tail -2 "$out/out")"
  fi

  name=dropped; out=$tmp/$name.out; cp "$tmp/big_v4.port" "$tmp/$name.port"
  read -r _ off _ len < <($tool doctor "$tmp/big_v4.pcap" "$tmp/$name.pcap" drop "$(cat "$tmp/$name.port")")
  head -c "$off" "$tmp/big_v4.want.c2s" >"$tmp/$name.want.c2s"
  tail -c +$((off + len + 1)) "$tmp/big_v4.want.c2s" >>"$tmp/$name.want.c2s"
  if replay "$name" "$tmp/$name.pcap" "$out" && cmp -s "$out/1.c2s" "$tmp/$name.want.c2s" &&
     cmp -s "$out/1.s2c" "$tmp/big_v4.want.s2c" && grep -q "gaps_c2s=1 lost_c2s=$len gaps_s2c=0" "$out/out"; then
    ok "$name (gap of $len bytes at offset $off reported, delivery resumed)"
  else
    bad "$name" "want gap $len at $off: $(head -1 "$out/out")"
  fi

  name=midstream; out=$tmp/$name.out; cp "$tmp/big_v4.port" "$tmp/$name.port"
  read -r _ cfrom _ sfrom < <($tool doctor "$tmp/big_v4.pcap" "$tmp/$name.pcap" midstream "$(cat "$tmp/$name.port")")
  tail -c +$((cfrom + 1)) "$tmp/big_v4.want.c2s" >"$tmp/$name.want.c2s"
  tail -c +$((sfrom + 1)) "$tmp/big_v4.want.s2c" >"$tmp/$name.want.s2c"
  if replay "$name" "$tmp/$name.pcap" "$out" && cmp -s "$out/1.c2s" "$tmp/$name.want.c2s" &&
     cmp -s "$out/1.s2c" "$tmp/$name.want.s2c" && grep -q 'midstream=1 close=fin' "$out/out"; then
    ok "$name (joined at c2s offset $cfrom, s2c offset $sfrom)"
  else
    bad "$name" "$(head -1 "$out/out")"
  fi

  name=truncated_file; out=$tmp/$name.out; cp "$tmp/big_v4.port" "$tmp/$name.port"
  head -c $(( $(stat -c %s "$tmp/big_v4.pcap") / 2 + 7 )) "$tmp/big_v4.pcap" >"$tmp/$name.pcap"
  replay "$name" "$tmp/$name.pcap" "$out"; rc=$?
  if [ $rc -le 1 ] && grep -q '^stats ' "$out/out" && cmp -s "$out/1.c2s" <(head -c "$(stat -c %s "$out/1.c2s")" "$tmp/big_v4.want.c2s"); then
    ok "$name (half a file: prefix of the stream, exit $rc)"
  else
    bad "$name" "exit $rc: $(tail -2 "$out/out")"
  fi
  name=pcapng; out=$tmp/$name.out; cp "$tmp/big_v4.port" "$tmp/$name.port"
  $tool doctor "$tmp/big_v4.pcap" "$tmp/$name.pcapng" pcapng 0 >/dev/null
  if replay "$name" "$tmp/$name.pcapng" "$out" && cmp -s "$out/1.c2s" "$tmp/big_v4.want.c2s" &&
     cmp -s "$out/1.s2c" "$tmp/big_v4.want.s2c" &&
     grep -q "progress done=$(stat -c %s "$tmp/$name.pcapng") total=$(stat -c %s "$tmp/$name.pcapng") linktype=1" "$out/out"; then
    ok "$name (same streams from a pcapng file; progress reached the file size)"
  else
    bad "$name" "$(grep -v '^frames' "$out/out" | tail -3)"
  fi
else
  for n in shuffled dropped midstream truncated_file pcapng; do bad "$n" "no recording"; done
fi

# Live capture through pcap_src itself (non-blocking, polled fd), no tcpdump.
name=live_v4; out=$tmp/$name.out; rm -rf "$out"; mkdir -p "$out"
port=$($tool free-port); echo "$port" >"$tmp/$name.port"
"$dump" -i lo -t 3 -p "$port" -o "$out" >"$out/out" 2>"$out/err" &
live_pid=$!
for _ in $(seq 100); do grep -q listening "$out/err" 2>/dev/null && break; sleep 0.05; done
if grep -q listening "$out/err" && $tool echo 127.0.0.1 "$port" "$tmp/$name.want" big; then
  wait "$live_pid"; rc=$?
  if [ $rc = 0 ] && cmp -s "$out/1.c2s" "$tmp/$name.want.c2s" && cmp -s "$out/1.s2c" "$tmp/$name.want.s2c" &&
     grep -q 'close=fin' "$out/out" && grep -q '^live received=[1-9][0-9]* dropped=0' "$out/out"; then
    ok "$name ($(sed -n 's/^live //p' "$out/out"))"
  else
    bad "$name" "exit $rc: $(cat "$out/err") $(grep -v '^frames' "$out/out" | tail -3)"
  fi
else
  kill "$live_pid" 2>/dev/null; wait "$live_pid" 2>/dev/null
  bad "$name" "live capture did not start: $(cat "$out/err")"
fi

# Bad input: a file that is not a capture, and a missing one: clean errors, no crash.
name=bad_files; echo "not a pcap" >"$tmp/garbage.pcap"
"$dump" -r "$tmp/garbage.pcap" -p 1 -o "$tmp" >/dev/null 2>"$tmp/garbage.err"; rc1=$?
"$dump" -r "$tmp/does-not-exist.pcap" -p 1 -o "$tmp" >/dev/null 2>"$tmp/missing.err"; rc2=$?
if [ $rc1 = 1 ] && [ $rc2 = 1 ] && grep -q "garbage.pcap: " "$tmp/garbage.err" &&
   grep -q "does-not-exist.pcap: " "$tmp/missing.err"; then
  ok "$name ($(head -c 80 "$tmp/garbage.err"))"
else
  bad "$name" "rc $rc1/$rc2: $(cat "$tmp/garbage.err" "$tmp/missing.err")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
