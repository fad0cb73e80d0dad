#!/usr/bin/env bash
# t_capture_compare.sh: the same traffic traced twice, inline and passively.  The
# workload (mariadb CLI, Connector/C prepared statements, pymysql) runs through
# `routetrace proxy --trace`, while tcpdump records the proxy's listen port; then
# `routetrace capture -r` replays that pcap.  The two traces must agree field for field
# except timing (ts, latency_us), source and the session id (each process numbers its
# own sessions): records are paired by client address ("client", identical in both:
# the capture sees the same client socket the proxy accepted) and order.
# Env (run.sh): RT_BIN RT_TOOLS PYTHON MYSQL_PORT MYSQL_SOCK RT_NATIVE_USER/PW TEST_TMP.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rt_init
. "$here/capture_lib.sh"
cap_setup capture_compare

# The readiness probe only opens a TCP connection (no statement, no record), so the
# proxy's trace holds exactly the sessions tcpdump saw.
rm -f "$tmp/proxy.trace"
if ! RT_PROXY_WAIT=tcp rt_start_proxy --rules "$RULES" --trace "$tmp/proxy.trace" --guard warn; then
	rt_fail "proxy start"; rt_summary; exit 1
fi
P=$RT_PROXY_PORT
tcpdump -i lo -U --immediate-mode -B 131072 -n -s 262144 -w "$tmp/proxy.pcap" "tcp port $P" \
	2>"$tmp/tcpdump.log" &
TCPDUMP_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/tcpdump.log" && break; sleep 0.05; done
$tool workload 127.0.0.1 "$P" "$tmp/expect.json"
sleep 0.5
kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null; TCPDUMP_PID=
rt_eq "tcpdump dropped nothing" 0 "$(awk '/dropped by kernel/ {print $1}' "$tmp/tcpdump.log")"
rt_stop_proxy
rt_eq "proxy drains and exits 0" 0 "$?"

rm -f "$tmp/capture.trace"
"$RT_BIN" capture -r "$tmp/proxy.pcap" --port "$P" --trace "$tmp/capture.trace" --rules "$RULES" \
	--guard warn >/dev/null 2>"$tmp/capture.err"
rt_eq "capture exit status" 0 "$?"
rt_match "capture: nothing missed" '^verdict: complete: nothing was missed' "$(cat "$tmp/capture.err")"
rt_check "proxy trace: every statement once, right class/target/tables/result" \
	$tool check-trace "$tmp/proxy.trace" "$tmp/expect.json"
rt_check "capture trace: every statement once, right class/target/tables/result" \
	$tool check-trace "$tmp/capture.trace" "$tmp/expect.json"
rt_check "capture trace == proxy trace, field for field (but ts, latency_us, source, session)" \
	$tool compare "$tmp/proxy.trace" "$tmp/capture.trace"
rt_eq "proxy records say source proxy" "$(grep -c '"class"' "$tmp/proxy.trace")" \
	"$(grep '"class"' "$tmp/proxy.trace" | grep -c '"source":"proxy"')"
rt_eq "capture records say source capture" "$(grep -c '"class"' "$tmp/capture.trace")" \
	"$(grep '"class"' "$tmp/capture.trace" | grep -c '"source":"capture"')"
rt_summary
