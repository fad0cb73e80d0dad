#!/usr/bin/env bash
# t_capture_trace.sh: `routetrace capture` end to end.  Records pcaps on loopback (tcpdump)
# while real clients (mariadb CLI, Connector/C rt_client with prepared statements,
# pymysql) run known statements against the test MariaDB, replays them with
# `routetrace capture -r`, and checks every statement is found once with the right
# target, class, tables and result; then doctored copies (pcapng, reordered +
# duplicated, one segment dropped, started mid-session), TLS, not-MySQL bytes, broken
# and hostile files, and a live capture with /metrics.
# Env (run.sh): RT_BIN RT_BUILD RT_TOOLS PYTHON MYSQL_PORT MYSQL_SOCK RT_NATIVE_USER/PW TEST_TMP.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rt_init
. "$here/capture_lib.sh"
cap_setup capture_trace

# tcpdump_start PCAP PORT / tcpdump_stop: loopback capture (TCPDUMP_IF=any: Linux cooked) with a big kernel buffer
# (the default one drops packets of a large result); sets TCPDUMP_DROPS.
tcpdump_start() {
	local log=$1.log
	tcpdump -i "${TCPDUMP_IF:-lo}" -U --immediate-mode -B 131072 -n -s 262144 -w "$1" "tcp port $2" 2>"$log" &
	TCPDUMP_PID=$!
	for _ in $(seq 100); do grep -q "listening on" "$log" 2>/dev/null && return 0; sleep 0.05; done
	return 1
}
tcpdump_stop() {
	local log=$1.log
	sleep 0.5
	kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null; TCPDUMP_PID=
	TCPDUMP_DROPS=$(awk '/dropped by kernel/ {print $1}' "$log")
}

# capture NAME PCAP [ARGS]: routetrace capture -r into NAME.trace / NAME.err; CAP_RC
capture() {
	local name=$1 pcap=$2; shift 2
	rm -f "$tmp/$name.trace"
	"$RT_BIN" capture -r "$pcap" --trace "$tmp/$name.trace" --rules "$RULES" --guard block "$@" \
		>"$tmp/$name.out" 2>"$tmp/$name.err"
	CAP_RC=$?
	touch "$tmp/$name.trace"
}

# counter NAME LABEL: a number from the end-of-run summary
counter() { sed -n "s/^  $2  *\([0-9][0-9]*\).*/\1/p" "$tmp/$1.err" | head -1; }

# expect_counter CASE NAME LABEL VALUE
expect_counter() { rt_eq "$1: $3 = $4" "$4" "$(counter "$2" "$3")"; }

# ---- direct traffic ---------------------------------------------------------------------
W=$tmp/direct.pcap
if tcpdump_start "$W" "$MYSQL_PORT"; then
	$tool workload 127.0.0.1 "$MYSQL_PORT" "$tmp/direct.expect.json"
	tcpdump_stop "$W"
	rt_eq "direct: tcpdump dropped nothing" 0 "${TCPDUMP_DROPS:-?}"
else
	rt_fail "direct: tcpdump did not start"
fi
capture direct "$W"
rt_eq "direct: exit status" 0 "$CAP_RC"
rt_check "direct: every statement (CLI, multi-statement, USE, error, ${W##*/} big result, prepared, pymysql) once, right class/target/tables/result" \
	$tool check-trace "$tmp/direct.trace" "$tmp/direct.expect.json"
rt_match "direct: records carry source capture" '"source":"capture"' "$(head -c 100000 "$tmp/direct.trace")"
rt_match "direct: summary verdict complete" '^verdict: complete' "$(cat "$tmp/direct.err")"
expect_counter direct direct "wire anomalies" 0

# the same workload seen through Linux cooked capture (tcpdump -i any: SLL2 link type)
if TCPDUMP_IF=any tcpdump_start "$tmp/any.pcap" "$MYSQL_PORT"; then
	$tool workload 127.0.0.1 "$MYSQL_PORT" "$tmp/any.expect.json"
	tcpdump_stop "$tmp/any.pcap"
fi
capture any "$tmp/any.pcap"
rt_match "cooked capture (-i any): link type SLL2" 'SLL2|cooked' "$(tcpdump -r "$tmp/any.pcap" -c 1 2>&1 | head -1)"
rt_check "cooked capture (-i any): every statement once, right class/target/tables/result" \
	$tool check-trace "$tmp/any.trace" "$tmp/any.expect.json"

# ---- doctored copies --------------------------------------------------------------------
$tool doctor "$W" "$tmp/ng.pcapng" pcapng "$MYSQL_PORT" >/dev/null
capture ng "$tmp/ng.pcapng"
rt_check "pcapng copy: same trace field for field" $tool compare "$tmp/direct.trace" "$tmp/ng.trace"

$tool doctor "$W" "$tmp/shuffled.pcap" shuffle-dir "$MYSQL_PORT" >/dev/null
capture shuffled "$tmp/shuffled.pcap"
rt_check "reordered + duplicated segments: same trace field for field" \
	$tool compare "$tmp/direct.trace" "$tmp/shuffled.trace"
expect_counter shuffled shuffled "reassembly gaps" 0

# the CLI's "SELECT COUNT(*) FROM t2 /* tag */" segment is lost: that statement alone is
# missing; the session's later statements decode, with target unknown (never guessed)
$tool doctor "$W" "$tmp/dropped.pcap" "drop-text:FROM t2 /*" "$MYSQL_PORT" >/dev/null
capture dropped "$tmp/dropped.pcap"
expect_counter "one segment dropped" dropped "reassembly gaps" 1
rt_match "one segment dropped: verdict says incomplete" '^verdict: INCOMPLETE' "$(cat "$tmp/dropped.err")"
rt_check "one segment dropped: every other statement still decoded (only the lost one missing)" \
	$tool check-trace "$tmp/dropped.trace" "$tmp/direct.expect.json" --ignore-target --allow-missing=1
rt_match "one segment dropped: the lost statement is the one missing" \
	'missing: query SELECT COUNT\(\*\) FROM t2 /\*' \
	"$($tool check-trace "$tmp/dropped.trace" "$tmp/direct.expect.json" --ignore-target)"
rt_match "one segment dropped: target unknown after the gap, never guessed" \
	'"target":"unknown"' "$(grep -F '"sql":"SELECT * FROM no_such_table' "$tmp/dropped.trace")"

$tool doctor "$W" "$tmp/mid.pcap" midstream "$MYSQL_PORT" >/dev/null
capture mid "$tmp/mid.pcap"
expect_counter "capture started mid-session" mid "mid-stream sessions" 1
rt_check "capture started mid-session: user/target unknown until USE, then the USE's" \
	$tool unknown-until-use "$tmp/mid.trace" 1 targetkeyspace

# ---- TLS and other protocols on the port ------------------------------------------------
if tcpdump_start "$tmp/tls.pcap" "$MYSQL_PORT"; then
	$tool sslrequest 127.0.0.1 "$MYSQL_PORT"
	tcpdump_stop "$tmp/tls.pcap"
fi
capture tls "$tmp/tls.pcap"
expect_counter "TLS (SSLRequest)" tls "opaque sessions (TLS)" 1
rt_eq "TLS (SSLRequest): no statement invented" 0 "$(grep -c '"class"' "$tmp/tls.trace")"

NP=$(rt_free_port)
$tool notmysql "$NP" 3 & RT_PIDS+=($!)
sleep 0.3
if tcpdump_start "$tmp/other.pcap" "$NP"; then
	$tool notmysql-client "$NP"
	tcpdump_stop "$tmp/other.pcap"
fi
capture other "$tmp/other.pcap" --port "$NP"
rt_eq "not MySQL on the port: exit status" 0 "$CAP_RC"
expect_counter "not MySQL on the port" other "not-MySQL flows" 1
rt_eq "not MySQL on the port: no statement invented" 0 "$(grep -c '"class"' "$tmp/other.trace")"

# ---- broken and hostile files -----------------------------------------------------------
size=$(stat -c %s "$W")
head -c $((size / 2 + 7)) "$W" >"$tmp/cut.pcap"
capture cut "$tmp/cut.pcap"
rt_eq "truncated pcap: exit status 0 (what was read is traced)" 0 "$CAP_RC"
rt_match "truncated pcap: the summary names the read error" 'read error|truncated' "$(cat "$tmp/cut.err")"
rt_match "truncated pcap: verdict says incomplete" '^verdict: INCOMPLETE: the input ended early' "$(cat "$tmp/cut.err")"
rt_match "truncated pcap: statements before the cut traced" '"class":"select"' "$(cat "$tmp/cut.trace")"

for kind in garbage_link hostile_tcp notmysql_bytes; do
	$tool badpcap "$kind" "$tmp/$kind.pcap" 3306 >/dev/null
	/usr/bin/time -f '%M' -o "$tmp/$kind.rss" "$RT_BIN" capture -r "$tmp/$kind.pcap" --port 3306 \
		--trace "$tmp/$kind.trace" >/dev/null 2>"$tmp/$kind.err"
	rc=$?
	rss=$(tail -1 "$tmp/$kind.rss")
	if [ $rc -eq 0 ] && [ "${rss:-999999}" -lt 204800 ]; then
		rt_pass "$kind: no crash, exit 0, peak RSS $((rss / 1024)) MiB"
	else
		rt_fail "$kind" "exit $rc, rss ${rss} KiB: $(tail -3 "$tmp/$kind.err")"
	fi
done
rt_match "garbage link layer: frames counted as skipped" 'skipped 300[0-9]' "$(cat "$tmp/garbage_link.err")"
rt_match "hostile TCP: overlaps/out-of-order counted as gaps or not MySQL" \
	'(reassembly gaps +[1-9])|(not-MySQL flows +[1-9])' "$(cat "$tmp/hostile_tcp.err")"
rt_match "bytes that are not MySQL: counted" 'not-MySQL flows +1' "$(cat "$tmp/notmysql_bytes.err")"
capture wrongport "$W" --port 9
rt_match "wrong --port: the verdict says nothing was seen" '^verdict: NOTHING SEEN' "$(cat "$tmp/wrongport.err")"
printf 'this is not a capture file\n' >"$tmp/text.pcap"
rt_check_fails "not a pcap file: clean error exit" "$RT_BIN" capture -r "$tmp/text.pcap"

# ---- live capture with /metrics ---------------------------------------------------------
if [ "$(id -u)" = 0 ] || getcap "$RT_BIN" 2>/dev/null | grep -q cap_net_raw; then
	AP=$(rt_free_port)
	rm -f "$tmp/live.trace"
	"$RT_BIN" capture -i lo --port "$MYSQL_PORT" --trace "$tmp/live.trace" --rules "$RULES" \
		--guard block --admin "127.0.0.1:$AP" --buffer-size 134217728 2>"$tmp/live.err" &
	LIVE=$!
	RT_PIDS+=("$LIVE")
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$AP/health" >/dev/null && break; sleep 0.1; done
	sleep 0.3
	$tool workload 127.0.0.1 "$MYSQL_PORT" "$tmp/live.expect.json"
	sleep 1.5
	metrics=$(curl -sf "http://127.0.0.1:$AP/metrics")
	rt_match "live: /metrics has the capture's flows" '^routetrace_capture_flows_total [3-9]' "$metrics"
	rt_match "live: /metrics has kernel drops" '^routetrace_capture_kernel_drops_total 0' "$metrics"
	rt_match "live: /metrics has opaque sessions" 'routetrace_capture_opaque_sessions_total\{reason="tls"\} 0' "$metrics"
	kill -TERM "$LIVE"; wait "$LIVE"; rc=$?
	rt_eq "live: SIGTERM exits 0" 0 "$rc"
	rt_check "live: every statement once, right class/target/tables/result" \
		$tool check-trace "$tmp/live.trace" "$tmp/live.expect.json"
else
	rt_fail "live" "needs root or CAP_NET_RAW on $RT_BIN"
fi

rt_summary
