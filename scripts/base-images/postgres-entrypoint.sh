#!/bin/bash
# The subset of the official image's entrypoint that this project uses: on an
# empty PGDATA, initdb with the password from POSTGRES_PASSWORD_FILE, create
# POSTGRES_DB, accept password logins from the network; then exec the server.
set -euo pipefail
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ "$(id -u)" != 0 ] || { echo "run this stand-in as the postgres user" >&2; exit 1; }
  user="${POSTGRES_USER:-postgres}"
  pwfile="${POSTGRES_PASSWORD_FILE:-}"
  [ -n "$pwfile" ] && [ -s "$pwfile" ] || { echo "POSTGRES_PASSWORD_FILE must name a non-empty file" >&2; exit 1; }
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
         --encoding=UTF8 -D "$PGDATA" >/dev/null
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.auto.conf"
  db="${POSTGRES_DB:-$user}"
  if [ "$db" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    createdb --username="$user" "$db"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
fi
exec "$@"
