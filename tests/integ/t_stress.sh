#!/usr/bin/env bash
# 500 concurrent clients through the proxy, each connected at once, each running queries.
. "$(dirname "$0")/lib.sh"
rt_init
rt_start_proxy || { rt_fail "proxy start"; rt_summary; exit 1; }
N=${RT_STRESS_CLIENTS:-500}
out=$("$RT_TOOLS/rt_client" stress 127.0.0.1 "$RT_PROXY_PORT" "$RT_NATIVE_USER" "$RT_NATIVE_PW" "$N" 20 2>&1)
rt_eq "$N concurrent clients x 20 queries all correct" "stress ok=$((N * 20)) failed=0" "$out"
for i in $(seq 1 100); do
	closed=$(grep -c 'session close' "$RT_PROXY_LOG"); [ "$closed" -ge $((N + 1)) ] && break; sleep 0.1
done
rt_eq "all $N sessions (+1 start-up probe) closed and logged" $((N + 1)) "$closed"
rt_eq "none of them closed for an error" 0 "$(grep 'session close' "$RT_PROXY_LOG" | grep -vc 'reason="client quit"')"
rt_proxy_alive "proxy serves after the load"
rss=$(awk '/VmHWM/ {print $2}' /proc/$RT_PROXY_PID/status)
echo "     peak RSS with $N clients: ${rss} kB"
rt_stop_proxy; rt_eq "proxy exits 0" 0 $?
rt_summary
