#!/usr/bin/env bash
# Failures mid-session and flow control: a client that disconnects mid-result, the server
# killing a connection mid-query, a 1 GiB result and a 256 MiB LOAD DATA upload through
# the proxy with flat memory (backpressure).
. "$(dirname "$0")/lib.sh"
rt_init
C=$RT_TOOLS/rt_client
# Under ASan, its quarantine would hold freed chains: keep it small so RSS means ours.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1 rt_start_proxy --set buffer_high_water=262144 || { rt_fail "proxy start"; rt_summary; exit 1; }
P=$RT_PROXY_PORT

# A healthy session that stays open across the failures.
"$PYTHON" - "$P" >"$TEST_TMP/healthy.out" 2>&1 <<'PY' &
import os, sys, time, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user=os.environ["RT_NATIVE_USER"], password=os.environ["RT_NATIVE_PW"])
good = 0
for i in range(60):
    with c.cursor() as cur:
        cur.execute("SELECT %s + 1", (i,))
        good += cur.fetchone()[0] == i + 1
    time.sleep(0.1)
print("healthy", good)
PY
healthy=$!

out=$("$C" abandon 127.0.0.1 $P "$RT_NATIVE_USER" "$RT_NATIVE_PW" 1000 2>&1)
rt_match "client read 1000 rows of a 2M-row result then dropped" "abandoning after 1000 rows" "$out"
rt_log_wait "proxy logged the client gone mid-response" 'reason="client went away mid-response \(1 command pending\)"'
rt_proxy_alive "proxy serves new sessions after the abandoned result"
n=0
for i in $(seq 1 50); do
	n=$(rt_db_root -N -e "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'SELECT seq, REPEAT%'")
	[ "$n" = 0 ] && break; sleep 0.1
done
rt_eq "upstream side of the abandoned session was closed (query gone from the server)" 0 "$n"

"$C" killed 127.0.0.1 $P "$RT_NATIVE_USER" "$RT_NATIVE_PW" 20 >"$TEST_TMP/killed.out" 2>&1 &
k=$!
id=
for i in $(seq 1 50); do id=$(sed -n 's/^conn_id //p' "$TEST_TMP/killed.out"); [ -n "$id" ] && break; sleep 0.1; done
sleep 0.3
rt_db_root -e "KILL $id"
wait $k
out=$(cat "$TEST_TMP/killed.out")
rt_match "client sees an error when the server kills its connection mid-query" "^ERR (2013|1927|2006)" "$out"
rt_log_wait "proxy logged the upstream going away" 'reason="upstream (closed the connection|socket error)'
rt_proxy_alive "proxy serves new sessions after the kill"

wait $healthy
rt_eq "a parallel session kept working throughout" "healthy 60" "$(cat "$TEST_TMP/healthy.out")"

# 1 GiB result through the proxy to a CLI reader; proxy memory stays flat.
rss0=$(awk '/VmRSS/ {print $2}' /proc/$RT_PROXY_PID/status)
bytes=$(rt_sql $P --quick rt_test -e "SELECT REPEAT('x', 1048576) FROM seq_1_to_1024" | wc -c)
rt_eq "1 GiB result streamed through" $((1024 * 1048577)) "$bytes"
# 256 MiB LOAD DATA upload.
"$PYTHON" -c "
import sys
line = ('y' * 1000 + '\n').encode()
with open(sys.argv[1], 'wb') as f:
    for i in range(256 * 1024):
        f.write(line)" "$TEST_TMP/up.txt"
out=$(rt_sql $P --local-infile=1 rt_test -e "CREATE TABLE up (v TEXT) ENGINE=BLACKHOLE; LOAD DATA LOCAL INFILE '$TEST_TMP/up.txt' INTO TABLE up; SELECT ROW_COUNT(); DROP TABLE up" 2>&1)
rt_eq "256 MiB LOAD DATA LOCAL upload through" 262144 "$out"
hwm=$(awk '/VmHWM/ {print $2}' /proc/$RT_PROXY_PID/status)
echo "     proxy RSS before ${rss0} kB, peak ${hwm} kB after 1 GiB down + 256 MiB up"
if [ "$hwm" -lt 65536 ]; then rt_pass "proxy peak RSS under 64 MiB (${hwm} kB)"; else rt_fail "proxy peak RSS under 64 MiB" "${hwm} kB"; fi
rt_stop_proxy; rt_eq "proxy exits 0" 0 $?
rt_summary
