#!/usr/bin/env bash
# The mariadb CLI through the proxy: both auth methods, auth switch, wrong password,
# database in the handshake, USE, multi-statements, Unix socket listener, upstream
# unreachable, connection limit, timeouts, client_tls=refuse, SIGHUP reload, drain.
. "$(dirname "$0")/lib.sh"
rt_init
C=$RT_TOOLS/rt_client
SOCK=$TEST_TMP/rt.sock
rt_start_proxy --listen "unix:$SOCK" --log-level debug || { rt_fail "proxy start"; rt_summary; exit 1; }
P=$RT_PROXY_PORT

rt_eq "native password login (CLI)" "rt_native@%" "$(rt_sql $P -e 'SELECT CURRENT_USER()')"
out=$(mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P$P -u"$RT_ED_USER" -p"$RT_ED_PW" --batch --skip-column-names -e 'SELECT CURRENT_USER()' 2>&1)
rt_eq "ed25519 login via auth switch (CLI)" "rt_ed@%" "$out"
rt_eq "ed25519 login (Connector/C)" "OK rt_ed@% rt_test" "$("$C" login 127.0.0.1 $P "$RT_ED_USER" "$RT_ED_PW" rt_test)"
rt_eq "database in the handshake" "OK rt_native@% rt_test" "$("$C" login 127.0.0.1 $P "$RT_NATIVE_USER" "$RT_NATIVE_PW" rt_test)"
out=$("$C" login 127.0.0.1 $P "$RT_NATIVE_USER" wrong-pw)
rt_match "wrong password: ERR 1045 reaches the client" "^ERR 1045 28000 Access denied for user 'rt_native'" "$out"
out=$("$C" login 127.0.0.1 $P "$RT_ED_USER" wrong-pw)
rt_match "wrong ed25519 password: ERR 1045" "^ERR 1045 28000" "$out"
rt_log_wait "auth failure logged as the close reason" 'session close .*reason="authentication failed 1045'
out=$("$C" login 127.0.0.1 $P "$RT_NATIVE_USER" "$RT_NATIVE_PW" no_such_db)
rt_match "unknown database in the handshake: ERR 1049" "^ERR 1049 42000" "$out"

out=$(rt_sql $P -e "USE rt_test; SELECT DATABASE(); SELECT 1; SELECT 'two'")
rt_eq "USE and several statements (CLI)" "$(printf 'rt_test\n1\ntwo')" "$out"
rt_log_wait "target change logged from USE" "target '' -> 'rt_test'"
out=$(rt_sql $P rt_test -e "SELECT DATABASE()")
rt_eq "CLI with database argument" "rt_test" "$out"
out=$(mariadb --no-defaults -hlocalhost --socket="$SOCK" -u"$RT_NATIVE_USER" -p"$RT_NATIVE_PW" --batch --skip-column-names -e 'SELECT 40+2' 2>&1)
rt_eq "login through the Unix socket listener" "42" "$out"
rt_log_wait "session open/close logged" 'session close id=[0-9]+ client=127\.0\.0\.1:[0-9]+ user=rt_native target=rt_test c2s_bytes=[0-9]+ s2c_bytes=[0-9]+ commands=[0-9]+ duration_ms=[0-9]+ reason="client quit"'
rt_log_wait "greeting compression cleared (clients never compress)" 'session login'
out=$(mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P$P -u"$RT_NATIVE_USER" -p"$RT_NATIVE_PW" --compress --batch --skip-column-names -e 'SELECT 7' 2>&1)
rt_eq "client asking for compression still works (not negotiated)" "7" "$out"

# SIGHUP with a config file: reloadable keys apply, bad files keep the old config.
cfg=$TEST_TMP/rt.json
printf '{ "listen": ["127.0.0.1:%s"], "upstream": "127.0.0.1:%s", "log_level": "info" }\n' "$(rt_free_port)" "$MYSQL_PORT" >"$cfg"
rt_start_proxy -c "$cfg" || rt_fail "proxy with config file"
P2=$RT_PROXY_PORT; PID2=$RT_PROXY_PID; LOG2=$RT_PROXY_LOG
printf '{ "listen": ["127.0.0.1:1"], "upstream": "127.0.0.1:%s", "max_client_connections": 1 }\n' "$MYSQL_PORT" >"$cfg"
kill -HUP $PID2
rt_log_wait "SIGHUP: reload applied" "config reloaded from" "$LOG2"
# max_client_connections=1 now: hold one session open, the next one gets ERR 1040.
"$PYTHON" - $P2 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(1000)
time.sleep(3)
PY
holder=$!
sleep 0.5
out=$("$C" login 127.0.0.1 $P2 "$RT_NATIVE_USER" "$RT_NATIVE_PW")
rt_match "over max_client_connections: ERR 1040 Too many connections" "^ERR 1040 08004 Too many connections" "$out"
wait $holder
printf '{ "upstream": 42 }\n' >"$cfg"
kill -HUP $PID2
rt_log_wait "SIGHUP with a bad file keeps the old config (error names file:line:col and key)" "config reload failed, keeping the current config: .*rt.json:1:3: key 'upstream': must be a string" "$LOG2"
rt_eq "still serving after a failed reload" "OK rt_native@% -" "$("$C" login 127.0.0.1 $P2 "$RT_NATIVE_USER" "$RT_NATIVE_PW")"

# Drain: a session in a long query finishes after SIGTERM; new connections are refused.
out_file=$TEST_TMP/drain.out
rt_sql $P2 -e 'SELECT SLEEP(1.5), 99' >"$out_file" 2>&1 &
q=$!
sleep 0.4
kill -TERM $PID2
sleep 0.2
rt_check_fails "no new connections while draining" rt_sql $P2 -e 'SELECT 1'
wait $q
rt_eq "in-flight query finished during drain" "$(printf '0\t99')" "$(cat "$out_file")"
for i in $(seq 1 50); do kill -0 $PID2 2>/dev/null || break; sleep 0.1; done
wait $PID2; rt_eq "drained proxy exits 0" 0 $?
rt_log_wait "drain logged" "drain complete" "$LOG2"

# Upstream unreachable: a real ERR packet naming the address and the reason.
dead=$(rt_free_port)
RT_PROXY_WAIT=tcp rt_start_proxy --upstream "127.0.0.1:$dead"
out=$("$C" login 127.0.0.1 $RT_PROXY_PORT "$RT_NATIVE_USER" "$RT_NATIVE_PW")
rt_match "upstream unreachable: ERR 1105 HY000 naming the upstream and reason" "^ERR 1105 HY000 routetrace: cannot connect to upstream 127.0.0.1:$dead: Connection refused" "$out"
out=$(rt_sql $RT_PROXY_PORT -e 'SELECT 1' 2>&1)
rt_match "CLI shows the upstream error" "1105.*routetrace: cannot connect to upstream 127.0.0.1:$dead" "$out"
rt_stop_proxy; rt_eq "proxy exits 0" 0 $?
RT_PROXY_WAIT=tcp rt_start_proxy --upstream "unix:$TEST_TMP/nothing.sock"
out=$("$C" login 127.0.0.1 $RT_PROXY_PORT "$RT_NATIVE_USER" "$RT_NATIVE_PW")
rt_match "unix upstream missing: ERR names the path" "^ERR 1105 HY000 .*unix:$TEST_TMP/nothing.sock: No such file" "$out"
rt_stop_proxy

# Upstream over a Unix socket.
rt_start_proxy --upstream "unix:$MYSQL_SOCK" || rt_fail "proxy to unix upstream"
rt_eq "proxy to a Unix-socket upstream" "OK rt_native@% rt_test" "$("$C" login 127.0.0.1 $RT_PROXY_PORT "$RT_NATIVE_USER" "$RT_NATIVE_PW" rt_test)"
rt_stop_proxy

# Timeouts.
rt_start_proxy --set idle_timeout_s=1 --set handshake_timeout_ms=700
"$PYTHON" -c "
import socket,time; s=socket.create_connection(('127.0.0.1',$RT_PROXY_PORT)); s.recv(1000); time.sleep(1.5)" &
rt_log_wait "handshake timeout closes a silent client" 'reason="handshake not finished within 700 ms"'
out=$(rt_sql $RT_PROXY_PORT -e 'SELECT SLEEP(1.5)' 2>&1)
rt_eq "a query longer than idle_timeout is not cut" "0" "$out"
out=$("$PYTHON" - $RT_PROXY_PORT <<'PY' 2>&1
import os, sys, time, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user=os.environ["RT_NATIVE_USER"], password=os.environ["RT_NATIVE_PW"])
c.query("SELECT 1")
time.sleep(2.2)
try:
    c.query("SELECT 2")
    print("still open")
except Exception as e:
    print("closed", type(e).__name__)
PY
)
rt_match "idle session closed after idle_timeout_s" "^closed" "$out"
rt_log_wait "idle timeout logged" 'reason="idle for 1 s"'
rt_stop_proxy

# client_tls=refuse: SSL is cleared from the greeting; a client requiring TLS fails clearly.
rt_start_proxy --set client_tls=refuse
out=$(mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P$RT_PROXY_PORT -u"$RT_NATIVE_USER" -p"$RT_NATIVE_PW" --ssl --ssl-verify-server-cert -e 'SELECT 1' 2>&1)
rt_match "client_tls=refuse: a client requiring TLS fails at its end" "SSL|TLS" "$out"
rt_eq "client_tls=refuse: plain clients work" "1" "$(rt_sql $RT_PROXY_PORT -e 'SELECT 1')"
rt_stop_proxy

# Config errors name file, line, column and key; flags are validated too.
printf '{\n  "listen": ["127.0.0.1:3307"],\n  "bogus_key": 1\n}\n' >"$cfg"
out=$("$RT_BIN" proxy -c "$cfg" --check-config 2>&1)
rt_match "unknown key: file:line:col and key" "rt.json:3:3: key 'bogus_key': unknown key" "$out"
printf '{\n  "idle_timeout_s": 5,\n  "idle_timeout_s": 6\n}\n' >"$cfg"
out=$("$RT_BIN" proxy -c "$cfg" --check-config 2>&1)
rt_match "duplicate key rejected with position" "rt.json:3:.*duplicate object key" "$out"
out=$("$RT_BIN" proxy --check-config --set buffer_high_water=12 2>&1)
rt_match "out-of-bounds flag value" "key 'buffer_high_water': must be an integer from 4096" "$out"
rt_check "--version" "$RT_BIN" --version
rt_summary
