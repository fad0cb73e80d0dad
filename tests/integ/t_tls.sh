#!/usr/bin/env bash
# TLS without termination: client_tls=passthrough relays a TLS session as opaque bytes
# (logged as not inspectable); client_tls=refuse hides CLIENT_SSL so a client that
# requires TLS fails at its end.  Uses a second MariaDB that offers TLS.
. "$(dirname "$0")/lib.sh"
rt_init
D=$TEST_TMP/tlsdb
mkdir -p "$D"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-keyout "$D/key.pem" -out "$D/cert.pem" >/dev/null 2>&1
chmod 644 "$D/key.pem" "$D/cert.pem"
trap 'rt_cleanup; rt_db_stop "$D/db"' EXIT
if ! rt_db_start "$D/db" --ssl-cert="$D/cert.pem" --ssl-key="$D/key.pem"; then
	rt_fail "TLS-enabled MariaDB start"; tail -5 "$D/db/error.log"; rt_summary; exit 1
fi
TLS_PORT=$RT_DB_PORT
rt_db_root -e "CREATE USER tls@'%' IDENTIFIED BY 'tlspw'; GRANT ALL ON *.* TO tls@'%'"
tls_sql() { # PORT [args]
	local p=$1; shift
	mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$p" -utls -ptlspw --batch --skip-column-names "$@"
}

export RT_PROXY_WAIT=tcp   # the test users do not exist on this server
rt_start_proxy --upstream "127.0.0.1:$TLS_PORT" --set client_tls=passthrough
out=$(tls_sql $RT_PROXY_PORT --ssl --ssl-ca="$D/cert.pem" -e "SHOW STATUS LIKE 'Ssl_version'" 2>&1)
rt_match "passthrough: TLS session works end to end through the proxy" "^Ssl_version\s+TLSv1" "$out"
rt_log_wait "passthrough: logged as not inspectable" 'client requested TLS: relaying opaque bytes'
rt_log_wait "passthrough: close line marks it" 'session close .* inspectable=no reason='
out=$(tls_sql $RT_PROXY_PORT --skip-ssl -e "SELECT 'clear'" 2>&1)
rt_eq "passthrough: a client without TLS still works (and is inspected)" "clear" "$out"
rt_stop_proxy

rt_start_proxy --upstream "127.0.0.1:$TLS_PORT" --set client_tls=refuse
out=$(tls_sql $RT_PROXY_PORT --ssl --ssl-ca="$D/cert.pem" --ssl-verify-server-cert -e "SELECT 1" 2>&1)
rt_match "refuse: a client requiring TLS fails clearly at its end" "SSL|TLS" "$out"
out=$(tls_sql $RT_PROXY_PORT --skip-ssl -e "SHOW STATUS LIKE 'Ssl_version'" 2>&1)
rt_match "refuse: plain client works, not encrypted" "^Ssl_version\s*$" "$out"
# A lying client that sends SSLRequest although the greeting lacks CLIENT_SSL.
out=$("$PYTHON" - $RT_PROXY_PORT <<'PY'
import os, socket, struct, sys
sys.path.insert(0, os.environ["RT_SRC"])
import rtlib
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
seq, g = rtlib.read_packet(s)
caps, _ = rtlib.parse_greeting(g)
print("ssl-offered" if caps & 0x800 else "ssl-hidden")
s.sendall(rtlib.packet(1, struct.pack("<IIB", 0x800 | 0x200 | 0x8000 | 0x80000, 1 << 24, 33) + b"\0" * 23))
c = rtlib.RawClient.__new__(rtlib.RawClient); c.sock = s
print("closed" if c.closed_within(5) else "open")
PY
)
rt_eq "refuse: CLIENT_SSL hidden; an SSLRequest anyway is closed" "$(printf 'ssl-hidden\nclosed')" "$out"
rt_log_wait "refuse: reason logged" 'reason="client sent SSLRequest; client_tls=refuse"'
rt_stop_proxy
rt_summary
