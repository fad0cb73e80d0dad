#!/usr/bin/env bash
# tests/integ/run.sh: the integration suite.  Starts ONE throwaway MariaDB on loopback
# (temp datadir, random free port, unix socket), creates the test users, runs every
# tests/integ/t_*.sh and t_*.py, tallies their "N passed, N failed" lines into
# build/.results, and stops MariaDB (by pid) whatever happens.
# Env: BUILD (build dir holding routetrace and the tools; default build).
#      RT_INTEG_ONLY=pattern runs only the test files whose name matches.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
export RT_BUILD=$ROOT/$BUILD
export RT_BIN=$RT_BUILD/routetrace
export RT_TOOLS=$RT_BUILD/tests/integ
export PYTHON=/usr/bin/python3   # Debian's python (python3-pymysql), not a pyenv shim
export RT_SRC=$ROOT/tests/integ
[ -x "$RT_BIN" ] || { echo "integ: $RT_BIN missing (run make first)"; exit 1; }

. tests/integ/lib.sh

TOP_TMP=$(mktemp -d /tmp/rt-integ.XXXXXX)
chmod 755 "$TOP_TMP"
export TEST_TMP=$TOP_TMP/t
mkdir -p "$TEST_TMP"

cleanup() {
	rt_db_stop "$TOP_TMP/db"
	rm -rf "$TOP_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "integ: starting MariaDB in $TOP_TMP/db"
if ! rt_db_start "$TOP_TMP/db"; then
	echo "integ: MariaDB did not start"; tail -30 "$TOP_TMP/db/error.log" 2>/dev/null
	mkdir -p build; echo "integ 0 1" >>build/.results
	echo "integ: 0 passed, 1 failed"
	exit 1
fi
export MYSQL_HOST=127.0.0.1 MYSQL_PORT=$RT_DB_PORT MYSQL_SOCK=$RT_DB_SOCK
export RT_NATIVE_USER=rt_native RT_NATIVE_PW=native_pw
export RT_ED_USER=rt_ed RT_ED_PW=ed_pw
export RT_DB=rt_test
rt_db_root <<'SQL' || { echo "integ: cannot create test users"; exit 1; }
CREATE DATABASE rt_test;
CREATE USER rt_native@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('native_pw');
CREATE USER rt_ed@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed_pw');
GRANT ALL PRIVILEGES ON *.* TO rt_native@'%';
GRANT ALL PRIVILEGES ON *.* TO rt_ed@'%';
SQL

pass=0; fail=0; failed_files=()
for t in tests/integ/t_*.sh tests/integ/t_*.py; do
	[ -e "$t" ] || continue
	name=$(basename "$t")
	if [ -n "${RT_INTEG_ONLY:-}" ] && [[ $name != *${RT_INTEG_ONLY}* ]]; then continue; fi
	mkdir -p "$TEST_TMP/$name"
	start=$(date +%s)
	case $t in
	*.py) out=$(TEST_TMP=$TEST_TMP/$name timeout 300 "$PYTHON" "$t" 2>&1) ;;
	*) out=$(TEST_TMP=$TEST_TMP/$name timeout 300 bash "$t" 2>&1) ;;
	esac
	rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -1)
	p=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$line"); f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$line")
	p=${p:-0}; f=${f:-0}
	if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
	echo "$out" | sed "s/^/  [$name] /"
	echo "== $name: $p passed, $f failed ($(( $(date +%s) - start ))s)"
	pass=$((pass + p)); fail=$((fail + f))
	[ "$f" = 0 ] || failed_files+=("$name")
done
mkdir -p build; echo "integ $pass $fail" >>build/.results
[ ${#failed_files[@]} -eq 0 ] || echo "integ: failures in ${failed_files[*]}"
echo "integ: $pass passed, $fail failed"
[ $fail -eq 0 ]
