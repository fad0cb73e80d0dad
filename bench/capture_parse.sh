#!/usr/bin/env bash
# Parse one pcap with routetrace's capture mode, tshark's MySQL dissector and pt-query-digest, in
# one run, and compare the statements each finds with the ground truth capture_corpus.sh wrote.
# Issue 6 targets: 100% of the ground-truth statements, none invented; >= 20x tshark's and >= 100x
# pt-query-digest's statements per second on one core; memory bounded whatever the file size.
# usage: BUILD=build [RUNS=3] bench/capture_parse.sh PCAP      (PCAP.truth must exist)
#   tshark -r PCAP -d tcp.port==PORT,mysql -Y mysql.query -T fields -e mysql.query   (found: values)
#   tcpdump -r PCAP -x | pt-query-digest --type tcpdump   (found: its global query_count)
#   routetrace capture -r PCAP --trace -   (found: JSON statement records; skipped if not built yet)
# Wall time: median of RUNS (PTQD_RUNS=1 for pt-query-digest, which takes 15-25 s a run; the pcap is
# in the page cache after the first run); CPU = user + sys;
# peak RSS = /usr/bin/time -v maximum resident set size.
# env: RUNS (3) PTQD_RUNS (1) ROUTETRACE (binary) CAPTURE_ARGS (extra capture flags) CAPTURE_TOOLS ("rt tshark ptqd")
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
PCAP=$(realpath "${1:?usage: $0 PCAP}"); TRUTH=$PCAP.truth; RUNS=${RUNS:-3}; PTQD_RUNS=${PTQD_RUNS:-1}
TOOLS=${CAPTURE_TOOLS:-rt tshark ptqd}
[ -f "$TRUTH" ] || { echo "missing $TRUTH (run bench/capture_corpus.sh first)" >&2; exit 1; }
bench_init parse
bench_need tshark tcpdump percona-toolkit time python3 >/dev/null
W=$BENCH_WORK
tv() { sed -n "s/^$1=//p" "$TRUTH"; }
PORT=$(tv port); QUERY=$(tv com_query); PREP=$(tv com_stmt_prepare); EXEC=$(tv com_stmt_execute)
STMTS=$(tv statements); PREP=${PREP:-0}; EXEC=${EXEC:-0}
MIB=$(awk -v b="$(stat -c %s "$PCAP")" 'BEGIN {printf "%.1f", b / 1048576}')

# timeit NAME CMD: RUNS runs of CMD (bash -c), stdout kept in $W/NAME.out, stderr in $W/NAME.err.
# Prints "wall_median cpu_median peak_rss_kib"; returns 1 (stderr shown) if CMD fails.
timeit() {
  local t0 t1 walls=() cpus=() rss=0 r
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s.%N)
    if ! /usr/bin/time -v -o "$W/$1.time" bash -c "$2" >"$W/$1.out" 2>"$W/$1.err"; then
      echo "  $1 failed:" >&2; tail -5 "$W/$1.err" | sed 's/^/    /' >&2; return 1
    fi
    t1=$(date +%s.%N)
    walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    cpus+=("$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$W/$1.time")")
    r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/$1.time"); [ "$r" -gt "$rss" ] && rss=$r
  done
  echo "$(printf '%s\n' "${walls[@]}" | bench_median) $(printf '%s\n' "${cpus[@]}" | bench_median) $rss"
}

rows=()
if [[ " $TOOLS " == *" rt "* ]]; then
  if [ -x "$RT" ] && timeout 5 "$RT" capture --help 2>&1 | grep -qE -- '(^|[^[:alnum:]-])-r([^[:alnum:]-]|$)'; then
    RTARGS=""
    if timeout 5 "$RT" capture --help 2>&1 | grep -q -- '--rules'; then
      bench_vschema "$W/vschema.json" 2; RTARGS="--rules file:$W/vschema.json"
    fi
    RTCMD="exec '$RT' capture -r '$PCAP' --trace - $RTARGS ${CAPTURE_ARGS:-}"
    echo "  routetrace: $RTCMD"
    if m=$(timeit rt "$RTCMD"); then
      python3 "$BENCH_DIR/trace_count.py" "$W/rt.out" >"$W/rt.count"
      rows+=("routetrace|$(sed -n 's/^statements=//p' "$W/rt.count")|$m")
      # bounded memory: peak RSS on the first half of the same pcap, to set beside the full file's
      half=$(( $(capinfos -M -c "$PCAP" | awk '/Number of packets/ {print $NF}') / 2 ))
      tcpdump -r "$PCAP" -c "$half" -w "$W/half.pcap" 2>/dev/null
      RUNS=1 timeit rt_half "exec '$RT' capture -r '$W/half.pcap' --trace - $RTARGS ${CAPTURE_ARGS:-}" >"$W/rt_half.m" || true
    fi
  else
    if [ -x "$RT" ]; then echo "  routetrace capture: not available yet ($RT has no 'capture -r')"
    else echo "  routetrace capture: not available yet ($RT not built)"; fi
  fi
fi
if [[ " $TOOLS " == *" tshark "* ]]; then
  SEP=$'\x1e'  # aggregator for several MySQL PDUs in one frame (the default ',' is ambiguous)
  echo "  tshark: tshark -r PCAP -d tcp.port==$PORT,mysql -Y mysql.query -T fields -e mysql.query -E occurrence=a"
  if m=$(timeit tshark "tshark -r '$PCAP' -d tcp.port==$PORT,mysql -Y mysql.query -T fields -e mysql.query -E occurrence=a -E 'aggregator=$SEP'"); then
    n=$(( $(grep -c . "$W/tshark.out" || true) + $(tr -cd "$SEP" <"$W/tshark.out" | wc -c) ))
    rows+=("tshark|$n|$m")
  fi
fi
if [[ " $TOOLS " == *" ptqd "* ]]; then
  echo "  pt-query-digest: tcpdump -r PCAP -x -nn -q -tttt | pt-query-digest --type tcpdump --watch-server 127.0.0.1:$PORT --output json"
  ls /tmp/pt-query-digest-errors.* 2>/dev/null | sort >"$W/pterr.before" || true
  if m=$(RUNS=$PTQD_RUNS timeit ptqd "tcpdump -r '$PCAP' -x -nn -q -tttt 2>/dev/null | pt-query-digest --type tcpdump --watch-server 127.0.0.1:$PORT --output json"); then
    n=$(perl -MJSON::PP -0777 -ne 's/^[^{]*//; print decode_json($_)->{global}{query_count}' "$W/ptqd.out")
    rows+=("pt-query-digest|${n:-0}|$m")
  fi
  # it dumps sessions it cannot parse into /tmp/pt-query-digest-errors.*: count them, remove ours
  new=$(ls /tmp/pt-query-digest-errors.* 2>/dev/null | sort | comm -13 "$W/pterr.before" - || true)
  # shellcheck disable=SC2086
  [ -z "$new" ] || { echo "  pt-query-digest: $(cat $new | grep -c reason_for_failure) failed-session dumps over $PTQD_RUNS run(s) (removed)"; rm -f $new; }
fi

echo
echo "pcap: $PCAP  $MIB MiB, port $PORT; wall and CPU: median of $RUNS runs ($PTQD_RUNS for pt-query-digest, the slow one)"
echo "ground truth (general log, TCP clients): COM_QUERY=$QUERY COM_STMT_PREPARE=$PREP COM_STMT_EXECUTE=$EXEC;" \
     "statements=$STMTS (each statement of a multi-statement packet + each EXECUTE)"
printf '%-16s %8s %7s %7s %9s %8s %8s %8s %9s %7s %9s\n' tool found /q /q+p /q+p+e /stmts wall_s cpu_s found/s MiB/s peakRSS
for r in "${rows[@]}"; do
  IFS='|' read -r name n m <<<"$r"; read -r wall cpu rss <<<"$m"
  awk -v name="$name" -v n="$n" -v w="$wall" -v c="$cpu" -v r="$rss" -v q="$QUERY" -v p="$PREP" -v e="$EXEC" -v s="$STMTS" -v mb="$MIB" 'BEGIN {
    printf "%-16s %8d %7.3f %7.3f %9.3f %8.3f %8.3f %8.2f %9.0f %7.1f %6.1f MiB\n",
      name, n, n / q, n / (q + p), n / (q + p + e), n / s, w, c, n / w, mb / w, r / 1024 }'
  printf '%s %s %s %s\n' "$n" "$wall" "$cpu" "$rss" >"$W/row.$name"
done
echo "(found divided by: /q COM_QUERY, /q+p plus COM_STMT_PREPARE, /q+p+e plus COM_STMT_EXECUTE, /stmts the statements"
echo " a tracer should report; tshark shows no text for EXECUTE; pt-query-digest counts PREPARE and EXECUTE)"

[ -f "$W/row.routetrace" ] || exit 0
read -r rn rw rc rr <"$W/row.routetrace"
echo
for other in tshark pt-query-digest; do
  [ -f "$W/row.$other" ] || continue
  read -r on ow _ _ <"$W/row.$other"
  awk -v o="$other" -v rn="$rn" -v rw="$rw" -v on="$on" -v ow="$ow" -v tgt="$([ $other = tshark ] && echo 20 || echo 100)" 'BEGIN {
    x = (rn / rw) / (on / ow)
    printf "routetrace vs %-15s statements/s ratio %8.1fx (target >= %dx: %s); wall-time speedup on the same file %.1fx\n",
      o ":", x, tgt, (x >= tgt ? "met" : "NOT met"), ow / rw }'
done
awk -v rn="$rn" -v rw="$rw" -v rc="$rc" 'BEGIN {
  printf "routetrace CPU: %.2f s for %.2f s wall (%.2f cores); %.0f statements per CPU-second\n", rc, rw, (rw > 0 ? rc / rw : 0), (rc > 0 ? rn / rc : 0) }'
if [ -s "$W/rt_half.m" ]; then
  read -r _ _ hr <"$W/rt_half.m"
  awk -v full="$rr" -v half="$hr" -v mb="$MIB" 'BEGIN {
    printf "routetrace peak RSS: %.1f MiB on the whole pcap (%.1f MiB), %.1f MiB on its first half (x%.2f for 2x the data)\n",
      full / 1024, mb, half / 1024, (half > 0 ? full / half : 0) }'
fi
echo
echo "routetrace statements vs ground truth, by first SQL keyword (records: $(sed -n 's/^lines=//p' "$W/rt.count")," \
     "events $(sed -n 's/^events=//p' "$W/rt.count"), not JSON $(sed -n 's/^not_json=//p' "$W/rt.count"))"
{ sed -n 's/^kw\./T /p' "$TRUTH"; sed -n 's/^kw\./F /p' "$W/rt.count"; } | tr '=' ' ' | awk '
  { k[$2]; if ($1 == "T") t[$2] = $3; else f[$2] = $3 }
  END {
    printf "  %-12s %9s %9s %9s\n", "keyword", "truth", "found", "diff"
    for (w in k) { d = f[w] - t[w]; printf "  %-12s %9d %9d %+9d\n", w, t[w], f[w], d | "sort"
                   tt += t[w]; ff += f[w]; if (d > 0) extra += d; else miss -= d }
    close("sort")
    printf "  %-12s %9d %9d %+9d\n", "total", tt, ff, ff - tt
    printf "  found %.4f of the ground truth; at least %d missing and %d extra (target: all found, none invented)\n",
      (tt > 0 ? (ff - extra) / tt : 0), miss, extra }'
if [ -s "$W/rt.err" ]; then echo "routetrace's own summary (stderr, last lines):"; tail -15 "$W/rt.err" | sed 's/^/  /'; fi
