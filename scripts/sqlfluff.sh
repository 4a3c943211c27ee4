#!/usr/bin/env bash
# sqlfluff over the dbt project, with the dbt templater (config: dbt_project/.sqlfluff).
# Compiling a model runs its introspective macros (is_incremental(), previous_run(),
# timescaledb_enabled()), so dbt needs a database to compile against: this starts a throwaway
# PostgreSQL cluster of its own on a free loopback port (empty: every model compiles its
# full-build branch), and removes it afterwards. It never touches a running opsdash instance,
# its manifest (dbt writes to a temporary target path) or the caller's settings.
#
#   scripts/sqlfluff.sh                      lint the whole dbt project
#   scripts/sqlfluff.sh lint FILE...         lint some files (what the pre-commit hook does)
#   scripts/sqlfluff.sh fix [FILE...]        fix what can be fixed
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
pg_bin=/usr/lib/postgresql/15/bin

command=${1:-lint}
[ $# -gt 0 ] && shift
# sqlfluff takes the templater only from a config in its working directory: run in
# dbt_project/, with paths given from the repository root (as pre-commit passes them).
paths=()
for path in "$@"; do paths+=("${path#dbt_project/}"); done
[ ${#paths[@]} -gt 0 ] || paths=(.)

tmp=$(mktemp -d /tmp/opsdash-sqlfluff.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  as_pg "$pg_bin/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
chmod 755 "$tmp"
if [ "$(id -u)" = 0 ]; then chown postgres "$tmp"; fi

port=$("$root/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$pg_bin/initdb" -D "$tmp/data" -U opsdash --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$tmp/data" -l "$tmp/postgres.log" -w -t 60 \
  -o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null

# profiles.yml reads only these (opsdash_core/dbt_env.py sets them for the real warehouse)
export OPSDASH_DBT_HOST=127.0.0.1 OPSDASH_DBT_PORT=$port OPSDASH_DBT_USER=opsdash \
  OPSDASH_DBT_PASSWORD="" OPSDASH_DBT_DBNAME=postgres
export DBT_TARGET_PATH="$tmp/target" DBT_LOG_PATH="$tmp/logs" DO_NOT_TRACK=1 \
  DBT_SEND_ANONYMOUS_USAGE_STATS=false HTTPS_PROXY=http://127.0.0.1:9
cd dbt_project
"$root/.venv/bin/sqlfluff" "$command" "${paths[@]}"
