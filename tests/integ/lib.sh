# tests/integ/lib.sh: helpers for the integration tests (sourced).
#
#   . tests/integ/lib.sh; rt_init          # counters + a trap that kills what we start
#   rt_start_proxy [routetrace proxy args]  # free port, waits for a MySQL login through it
#   rt_check "name" cmd args...             # passes when cmd exits 0
#   rt_eq "name" expected actual
#   rt_log_wait "name" 'regex'              # the proxy log gets a matching line (<= 10 s)
#   rt_stop_proxy                           # SIGTERM, waits, returns the exit status
#   rt_summary                              # "N passed, N failed"; exit status
#
# Env from run.sh: RT_BIN RT_BUILD RT_TOOLS PYTHON MYSQL_HOST MYSQL_PORT MYSQL_SOCK
# RT_NATIVE_USER/PW RT_ED_USER/PW RT_DB TEST_TMP.

RT_PASS=0
RT_FAIL=0
RT_PIDS=()
PYTHON=${PYTHON:-/usr/bin/python3}

rt_free_port() {
	"$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

rt_pass() { RT_PASS=$((RT_PASS + 1)); echo "ok   $1"; }
rt_fail() { RT_FAIL=$((RT_FAIL + 1)); echo "FAIL $1${2:+: $2}"; }

# rt_check NAME CMD...: pass when CMD exits 0; its output is shown on failure.
rt_check() {
	local name=$1 out; shift
	if out=$("$@" 2>&1); then rt_pass "$name"; else rt_fail "$name" "exit $?"; echo "$out" | tail -20 | sed 's/^/     | /'; fi
}

# rt_check_fails NAME CMD...: pass when CMD exits non-zero.
rt_check_fails() {
	local name=$1; shift
	if "$@" >/dev/null 2>&1; then rt_fail "$name" "succeeded but should not"; else rt_pass "$name"; fi
}

rt_eq() {
	if [ "$2" == "$3" ]; then rt_pass "$1"; else rt_fail "$1" "expected [$2] got [$3]"; fi
}

# rt_match NAME REGEX TEXT
rt_match() {
	if grep -Eq -- "$2" <<<"$3"; then rt_pass "$1"; else rt_fail "$1" "[$3] does not match /$2/"; fi
}

rt_summary() {
	echo "$RT_PASS passed, $RT_FAIL failed"
	[ "$RT_FAIL" -eq 0 ]
}

rt_cleanup() {
	local p
	for p in "${RT_PIDS[@]}"; do
		kill "$p" 2>/dev/null && { sleep 0.2; kill -9 "$p" 2>/dev/null; }
	done
	RT_PIDS=()
}

rt_init() {
	trap rt_cleanup EXIT
	mkdir -p "$TEST_TMP"
}

# ---- MariaDB (used by run.sh; a test may start its own second instance) -------------

# rt_db_start DIR [MARIADBD ARGS]: installs and starts mariadbd in DIR; sets RT_DB_PORT
# RT_DB_SOCK RT_DB_PID.  Extra arguments go to mariadbd (e.g. --ssl-cert=...).
rt_db_start() {
	local dir=$1 i asuser=()
	shift
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then chown mysql: "$dir"; asuser=(--user=mysql); fi
	mariadb-install-db --no-defaults --auth-root-authentication-method=socket \
		--datadir="$dir/data" "${asuser[@]}" --skip-test-db >"$dir/install.log" 2>&1 || return 1
	RT_DB_PORT=$(rt_free_port)
	# --long-query-time: on a loaded machine a slow statement gets SERVER_QUERY_WAS_SLOW
	# (0x0800) in its OK, which would make direct-vs-proxy byte comparisons flaky.
	RT_DB_SOCK=$dir/mysqld.sock
	mariadbd --no-defaults "${asuser[@]}" --datadir="$dir/data" --socket="$RT_DB_SOCK" \
		--port="$RT_DB_PORT" --bind-address=127.0.0.1 --pid-file="$dir/mariadbd.pid" \
		--log-error="$dir/error.log" --max-connections=2000 --local-infile=1 \
		--plugin-load-add=auth_ed25519 --plugin-load-add=ha_blackhole --max-allowed-packet=1G --skip-name-resolve \
		--skip-log-bin --innodb-buffer-pool-size=256M --innodb-log-file-size=256M \
		--innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --sync-binlog=0 \
		--innodb-fast-shutdown=2 --thread-cache-size=600 \
		--open-files-limit=20000 --long-query-time=1000000 "$@" >/dev/null 2>&1 &
	RT_DB_PID=$!
	echo "$RT_DB_PID" >"$dir/launcher.pid"
	for i in $(seq 1 150); do
		if mariadb --no-defaults -hlocalhost -uroot --socket="$RT_DB_SOCK" -e 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$RT_DB_PID" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

# rt_db_stop DIR: stops the server started in DIR (by pid), waits for it.
rt_db_stop() {
	local dir=$1 pid i
	[ -f "$dir/launcher.pid" ] || return 0
	pid=$(cat "$dir/launcher.pid")
	kill "$pid" 2>/dev/null || return 0
	for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	return 0
}

# rt_db_root [args]: a root session over the unix socket (SQL on stdin or -e).
rt_db_root() {
	mariadb --no-defaults -hlocalhost -uroot --socket="${RT_DB_SOCK:-$MYSQL_SOCK}" "$@"
}

# ---- clients -------------------------------------------------------------------------

# rt_sql PORT [mariadb args]: the mariadb CLI as the native user on 127.0.0.1:PORT.
rt_sql() {
	local port=$1; shift
	mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -u"$RT_NATIVE_USER" \
		-p"$RT_NATIVE_PW" --batch --skip-column-names "$@"
}

# ---- the proxy ----------------------------------------------------------------------

# rt_start_proxy [ARGS]: starts routetrace proxy on a free port in front of the test
# MariaDB (ARGS may override --upstream and add --listen / --set ...).  Waits until a
# MySQL login through it works (RT_PROXY_WAIT=tcp: until the port accepts).  Sets
# RT_PROXY_PORT RT_PROXY_PID RT_PROXY_LOG.
RT_PROXY_N=0
rt_start_proxy() {
	local i up=()
	RT_PROXY_N=$((RT_PROXY_N + 1))
	RT_PROXY_PORT=$(rt_free_port)
	RT_PROXY_LOG=$TEST_TMP/proxy.$RT_PROXY_N.log
	local a
	for a in "$@"; do [[ $a == --upstream* || $a == -u ]] && up=(); done
	if ! printf '%s\n' "$@" | grep -q -- '^--upstream'; then up=(--upstream "127.0.0.1:$MYSQL_PORT"); fi
	"$RT_BIN" proxy --listen "127.0.0.1:$RT_PROXY_PORT" "${up[@]}" "$@" 2>"$RT_PROXY_LOG" &
	RT_PROXY_PID=$!
	RT_PIDS+=("$RT_PROXY_PID")
	for i in $(seq 1 100); do
		kill -0 "$RT_PROXY_PID" 2>/dev/null || { echo "proxy exited at start:"; tail -20 "$RT_PROXY_LOG"; return 1; }
		if [ "${RT_PROXY_WAIT:-login}" = tcp ]; then
			"$PYTHON" -c "import socket,sys; socket.create_connection(('127.0.0.1',$RT_PROXY_PORT),1).close()" 2>/dev/null && return 0
		elif rt_sql "$RT_PROXY_PORT" -e 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "proxy did not come up; log tail:"; tail -20 "$RT_PROXY_LOG"
	return 1
}

# rt_stop_proxy [PID]: SIGTERM (drain), waits up to 15 s; returns the proxy's exit status.
rt_stop_proxy() {
	local pid=${1:-$RT_PROXY_PID} i rc
	kill -TERM "$pid" 2>/dev/null || return 1
	for i in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; wait "$pid" 2>/dev/null; return 124; fi
	wait "$pid"; rc=$?
	RT_PIDS=("${RT_PIDS[@]/$pid}")
	return $rc
}

# rt_log_wait NAME REGEX [LOG]: passes once LOG (default: current proxy log) has a line
# matching REGEX, within 10 s.
rt_log_wait() {
	local name=$1 re=$2 log=${3:-$RT_PROXY_LOG} i
	for i in $(seq 1 100); do
		grep -Eq -- "$re" "$log" && { rt_pass "$name"; return 0; }
		sleep 0.1
	done
	rt_fail "$name" "no line matching /$re/ in $(basename "$log")"
	tail -5 "$log" | sed 's/^/     | /'
	return 1
}

# rt_proxy_alive NAME: the proxy process still runs and serves a fresh login.
rt_proxy_alive() {
	local out
	if kill -0 "$RT_PROXY_PID" 2>/dev/null && out=$(rt_sql "$RT_PROXY_PORT" -e 'SELECT 41+1' 2>&1) && [ "$out" = 42 ]; then
		rt_pass "$1"
	else
		rt_fail "$1" "proxy not serving: $out"
	fi
}
