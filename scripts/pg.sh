# shellcheck shell=bash
# Shared by scripts/test and scripts/bench: start_cluster starts a throwaway
# PostgreSQL on a free loopback port in a temporary directory and exports
# its URL as $PG_URL; stop_cluster removes it. PostgreSQL's binaries come
# from PATH or /usr/lib/postgresql/*/bin, installed with apt-get when
# neither has them. initdb refuses root, so as root the cluster runs as the
# `postgres` user.

find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  return 1
}

start_cluster() {
  local bin
  if ! bin="$(find_pg_bin)"; then
    echo "pg: PostgreSQL server binaries not found; installing with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    bin="$(find_pg_bin)"
  fi
  PG_TMP="$(mktemp -d /tmp/warden-pg.XXXXXX)"
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  local run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_TMP"
    run=(runuser -u postgres --)
  fi
  PG_RUN=("${run[@]}")
  PG_BIN="$bin"
  "${run[@]}" "$bin/initdb" -D "$PG_TMP/data" -U warden --auth=trust -E UTF8 >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; exit 1; }
  "${run[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TMP -c max_connections=400 -c fsync=off" start >/dev/null \
    || { cat "$PG_TMP/server.log" >&2; exit 1; }
  export PG_URL="postgres://warden@127.0.0.1:$port/postgres"
  echo "pg: throwaway PostgreSQL at 127.0.0.1:$port ($PG_TMP)" >&2
}

stop_cluster() {
  if [ -n "${PG_TMP:-}" ]; then
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
}

