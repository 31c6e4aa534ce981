#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL cluster for the session store tests
# (fsync=off: it holds nothing worth keeping, and CI is faster for it)
# and print its DSN as the last line of stdout. Run as root. Idempotent: a
# cluster started by an earlier call is reused.
#
#   export VOICEAUTH_TEST_POSTGRES="$(.ci/pg.sh | tail -n1)"
set -euo pipefail

PORT="${VOICEAUTH_PG_PORT:-55432}"
DB=voiceauth_test
BASE="${VOICEAUTH_PG_DIR:-${TMPDIR:-/tmp}/voiceauth-pg}"
DATA="$BASE/data"
DSN="postgres://postgres@127.0.0.1:${PORT}/${DB}?sslmode=disable"

log() { echo "pg.sh: $*" >&2; }

if [[ "$(id -u)" != 0 ]]; then
	log "must run as root (it may install PostgreSQL and runs it as the postgres user)"
	exit 1
fi

find_bin() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/initdb" ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

BIN="$(find_bin || true)"
if [[ -z "$BIN" ]]; then
	log "initdb not found under /usr/lib/postgresql/*/bin; installing postgresql"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
	BIN="$(find_bin)"
fi

as_pg() { su postgres -s /bin/bash -c "$*"; }

mkdir -p "$BASE"
chown postgres: "$BASE"
chmod 700 "$BASE"

if [[ ! -s "$DATA/PG_VERSION" ]]; then
	log "initializing cluster in $DATA"
	as_pg "'$BIN/initdb' -D '$DATA' --auth=trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8" >&2
fi

# Reuse a cluster only if it really answers: a postmaster killed with the
# previous session can leave a pid file (and a "running" status) behind.
if as_pg "'$BIN/pg_isready' -q -h 127.0.0.1 -p $PORT" >/dev/null 2>&1; then
	log "reusing running cluster in $DATA"
else
	as_pg "'$BIN/pg_ctl' -D '$DATA' -m immediate stop" >/dev/null 2>&1 || true
	pkill -9 -f "postgres -D $DATA" 2>/dev/null || true
	rm -f "$DATA/postmaster.pid"
	log "starting cluster on 127.0.0.1:$PORT"
	as_pg "'$BIN/pg_ctl' -D '$DATA' -l '$BASE/log' -w -t 60 -o \"-p $PORT -k '$BASE' -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off\" start" >&2
fi

if ! as_pg "'$BIN/psql' -h 127.0.0.1 -p $PORT -U postgres -tAc \"SELECT 1 FROM pg_database WHERE datname = '$DB'\"" | grep -q 1; then
	as_pg "'$BIN/createdb' -h 127.0.0.1 -p $PORT -U postgres $DB" >&2
fi

echo "$DSN"
