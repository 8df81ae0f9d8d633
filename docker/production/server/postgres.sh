#!/bin/sh
# PostgreSQL of the stack: the cluster lives in the pgdata volume and is made on the first start, with the
# password from the env file (stack.sh init). Password (scram) logins over the network; the socket inside
# the container trusts its own users (backups run `pg_dump` through it with `compose exec`).
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in the env file (docker/production/stack.sh init writes one)}"
PGDATA=${PGDATA:-/var/lib/postgresql/data}
PGUSER=${POSTGRES_USER:-dd2601}
PGDB=${POSTGRES_DB:-dd2601}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  chown postgres "$pwfile"
  as_postgres initdb -D "$PGDATA" -U "$PGUSER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  as_postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  as_postgres createdb -U "$PGUSER" "$PGDB"
  as_postgres pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
  echo "created the database cluster in $PGDATA"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*' \
  -c max_connections="${POSTGRES_MAX_CONNECTIONS:-200}" -c shared_buffers="${POSTGRES_SHARED_BUFFERS:-256MB}"
