#!/usr/bin/env bash
# Record a pcap of realistic MySQL traffic on loopback, with ground truth from MariaDB's general log.
# usage: BUILD=build [SCALE=0.5] bench/capture_corpus.sh PCAP        (SCALE multiplies event counts)
# workload: sysbench oltp_read_write (text and server-side prepared), oltp_point_select (prepared),
#   oltp_insert, plus mariadb-client batches: large result sets, multi-statement packets,
#   ~110 KB queries, 1 MiB inserts, syntax errors, utf8 text.
# writes: PCAP, PCAP.truth (key=value: port, per-command counts of TCP clients from the general log
#   com_query, com_stmt_prepare, com_stmt_execute, ...; statements = statements a tracer should
#   report: each statement of a multi-statement COM_QUERY + each COM_STMT_EXECUTE;
#   kw.WORD = those statements by first SQL keyword), PCAP.general.log
# env: CAPTURE_MYSQL_PORT (3317)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
OUT=$(realpath -m "${1:?usage: $0 PCAP}"); SCALE=${SCALE:-0.5}
PORT=${CAPTURE_MYSQL_PORT:-3317}
bench_init corpus
bench_need tcpdump sysbench mariadb-client >/dev/null
TCPDUMP=
stop_tcpdump() { [ -z "$TCPDUMP" ] || { kill -INT "$TCPDUMP" 2>/dev/null || true; wait "$TCPDUMP" 2>/dev/null || true; TCPDUMP=; }; }
trap 'stop_tcpdump; bench_cleanup' EXIT
bench_db "$PORT" >/dev/null
eval "$(MYSQL_PORT=$PORT "$BENCH_DIR/mariadb.sh" env)"
GLOG=$(dirname "$MYSQL_SOCK")/general.log
scaled() { awk -v b="$1" -v s="$SCALE" 'BEGIN { n = int(b * s); print (n < 1 ? 1 : n) }'; }
root() { mariadb --no-defaults -uroot -S "$MYSQL_SOCK" -e "$1"; }
cli() { mariadb --no-defaults -h127.0.0.1 -P"$PORT" -u"$BENCH_USER" -p"$BENCH_PASS" --force "$BENCH_DB" >/dev/null 2>&1 || true; }
SB=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$PORT" --mysql-user="$BENCH_USER"
    --mysql-password="$BENCH_PASS" --mysql-db="$BENCH_DB" --tables=2 --table-size=20000 --range-size=20 --time=0)
sysbench oltp_read_write "${SB[@]}" cleanup >/dev/null
sysbench oltp_read_write "${SB[@]}" prepare >/dev/null
root "DROP TABLE IF EXISTS $BENCH_DB.blobs; CREATE TABLE $BENCH_DB.blobs (id INT AUTO_INCREMENT PRIMARY KEY, b LONGBLOB);
      SET GLOBAL general_log_file='$GLOG'; SET GLOBAL general_log=1;"

rm -f "$OUT"; mkdir -p "$(dirname "$OUT")"
# 256 MiB kernel buffer: time-based runs at full speed dropped packets with the default one
tcpdump -i lo -s 0 -B 262144 -w "$OUT" "tcp port $PORT" 2>"$BENCH_WORK/tcpdump.err" & TCPDUMP=$!
for _ in $(seq 200); do grep -qs listening "$BENCH_WORK/tcpdump.err" && break; sleep 0.1; done
grep -qs listening "$BENCH_WORK/tcpdump.err" || { echo "tcpdump did not start:" >&2; cat "$BENCH_WORK/tcpdump.err" >&2; exit 1; }

sbq=0
sb() { local q; q=$(sysbench "$@" "${SB[@]}" run | awk '/queries:/ {print $2; exit}'); sbq=$((sbq + q)); echo "  sysbench $*: $q queries"; }
sb oltp_read_write --threads=4 --db-ps-mode=disable --events="$(scaled 2000)"
sb oltp_read_write --threads=4 --db-ps-mode=auto --events="$(scaled 2000)"
sb oltp_point_select --threads=2 --db-ps-mode=auto --events="$(scaled 30000)"
sb oltp_insert --threads=2 --db-ps-mode=disable --events="$(scaled 5000)"
echo "  client batches: large results, multi-statements, big queries, errors, utf8"
for _ in 1 2 3; do echo "SELECT * FROM sbtest1;"; done | cli
echo "SELECT a.*, b.c FROM sbtest1 a JOIN sbtest2 b ON a.id = b.id;" | cli
{ echo 'DELIMITER //'
  for i in $(seq 200); do echo "SELECT c FROM sbtest1 WHERE id=$i; UPDATE sbtest2 SET k=k+1 WHERE id=$i; SELECT COUNT(*) FROM sbtest2//"; done
} | cli
inlist=$(seq -s, 20000)
for _ in 1 2 3 4 5; do echo "SELECT COUNT(*) FROM sbtest1 WHERE id IN ($inlist);"; done | cli
big=$(head -c 1048576 /dev/zero | tr '\0' x)
for _ in 1 2 3; do echo "INSERT INTO blobs (b) VALUES ('$big');"; done | cli
for i in $(seq 10); do echo "SELEKT broken syntax $i;"; echo "SELECT * FROM no_such_table_$i;"; done | cli
for i in $(seq 20); do echo "SELECT 'héllo wörld ✓ $i' AS greeting, _utf8mb4'日本語' AS jp;"; done | cli

sleep 1; stop_tcpdump
root "SET GLOBAL general_log=0"
cp "$GLOG" "$OUT.general.log"; sed -n '/captured\|dropped/s/^/  /p' "$BENCH_WORK/tcpdump.err"
drops=$(awk '/dropped by kernel/ {print $1}' "$BENCH_WORK/tcpdump.err")
[ "${drops:-0}" = 0 ] || echo "WARNING: tcpdump dropped $drops packets: pcap is incomplete vs ground truth" >&2

# General log: count the commands of TCP clients (skips our admin socket session). A statement is
# each ';'-separated part of a COM_QUERY (the corpus has ';' only between statements of the
# multi-statement packets) and each COM_STMT_EXECUTE (a COM_INIT_DB is a target change, traced as
# an event, not a statement; this corpus has none).
{ echo "port=$PORT"; echo "scale=$SCALE"; echo "pcap_bytes=$(stat -c %s "$OUT")"
  echo "tcpdump_dropped=${drops:-0}"; echo "sysbench_queries=$sbq"
  awk -F'\t' '
    function kw(s) { sub(/^[ \t\r\n(]+/, "", s); return match(s, /^[A-Za-z_]+/) ? toupper(substr(s, 1, RLENGTH)) : "?" }
    $1 == "" && $2 == "" { f = $3; arg = $4 } $1 ~ /^[0-9]+ / { f = $2; arg = $3 }
    ($1 == "" && $2 == "") || $1 ~ /^[0-9]+ / {
      if (!match(f, /^ *[0-9]+ /)) next
      id = substr(f, 1, RLENGTH) + 0; cmd = tolower(substr(f, RLENGTH + 1)); gsub(/ /, "_", cmd)
      if (cmd ~ /^(prepare|execute)$/) cmd = "stmt_" cmd; if (cmd == "close_stmt") cmd = "stmt_close"
      if (cmd == "connect" && arg ~ /TCP\/IP/) tcp[id] = 1
      if (!(id in tcp)) next
      n[cmd]++
      if (cmd == "query") {
        np = split(arg, part, ";")
        for (i = 1; i <= np; i++) if (part[i] ~ /[^ \t\r\n]/) { st++; k[kw(part[i])]++ }
      } else if (cmd == "stmt_execute") { st++; k[kw(arg)]++ }
    }
    END { for (c in n) print "com_" c "=" n[c]
          for (w in k) print "kw." w "=" k[w]
          print "statements=" st + 0 }' "$OUT.general.log" | sort
} >"$OUT.truth"
echo "  pcap: $OUT ($(du -h "$OUT" | cut -f1)); ground truth: $OUT.truth"
echo "  truth: $(grep -E '^(com_|statements=)' "$OUT.truth" | paste -sd' ')"
