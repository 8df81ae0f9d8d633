#!/usr/bin/env bash
# The production stack of the DD2601 lab platform (docs/production.md, README "Production").
#
#   stack.sh init                 first run: write the env file (secrets) and a self-signed certificate
#   stack.sh up                   build the images (offline), start the database and broker, migrate once, start all
#   stack.sh create-examiner USER [--course DD2601 --round HT26 ...]   the first examiner (prints a password)
#   stack.sh import-parts         load the LAB1 parts (idempotent)
#   stack.sh backup DIR           the database (pg_dump) and the archives (tar) into DIR
#   stack.sh restore DIR          put a backup back (stops web and workers meanwhile)
#   stack.sh upgrade              rebuild, drain the workers, migrate once, start the new version
#   stack.sh worker-env ADDR      the env file for a worker host that reaches this host at ADDR
#   stack.sh down | ps | logs [SERVICE] | manage ARGS... | compose ARGS...
#
# Settings of the installation live in $DD2601_STATE_DIR (default docker/production/state): the env file
# production.env and tls/. Works with `docker compose` (v2) and `docker-compose` 1.29; DD2601_COMPOSE picks.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
state=${DD2601_STATE_DIR:-$here/state}
mkdir -p "$state"
state=$(cd "$state" && pwd)
export DD2601_ENV_FILE=$state/production.env DD2601_TLS_DIR=$state/tls

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'stack.sh: %s\n' "$*" >&2; exit 1; }

if [[ -n ${DD2601_COMPOSE:-} ]]; then
  read -r -a compose_cmd <<<"$DD2601_COMPOSE"
elif docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose_cmd=(docker-compose)
else
  die "neither 'docker compose' nor 'docker-compose' is installed (Debian: apt-get install docker-compose)"
fi

setting() { sed -n "s/^$1=//p" "$DD2601_ENV_FILE" | tail -1; }
compose() {
  [[ -f $DD2601_ENV_FILE ]] || die "no env file at $DD2601_ENV_FILE: run '$0 init' first"
  "${compose_cmd[@]}" --project-name "$(setting COMPOSE_PROJECT_NAME)" --env-file "$DD2601_ENV_FILE" \
    --file "$here/docker-compose.yml" "$@"
}
manage() { compose run --rm --no-deps web python3 manage.py "$@"; }

# ---- init: secrets and a certificate, written once and never overwritten ---------------------------------
cmd_init() {
  if [[ -f $DD2601_ENV_FILE ]]; then
    say "keeping the existing $DD2601_ENV_FILE"
  else
    say "writing $DD2601_ENV_FILE (secrets: keep it private, back it up with the database)"
    (umask 077; python3 "$here/init_env.py" >"$DD2601_ENV_FILE.tmp") && mv "$DD2601_ENV_FILE.tmp" "$DD2601_ENV_FILE"
  fi
  if [[ ! -s $DD2601_TLS_DIR/cert.pem ]]; then
    say "making a self-signed certificate in $DD2601_TLS_DIR (replace cert.pem and key.pem with the site's own)"
    mkdir -p "$DD2601_TLS_DIR"
    local names san=""
    IFS=, read -r -a names <<<"$(setting DJANGO_ALLOWED_HOSTS)"
    for name in "${names[@]}"; do
      if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san+="IP:$name,"; else san+="DNS:$name,"; fi
    done
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=${names[0]}" -addext "subjectAltName=${san%,}" \
      -keyout "$DD2601_TLS_DIR/key.pem" -out "$DD2601_TLS_DIR/cert.pem" 2>/dev/null
    chmod 644 "$DD2601_TLS_DIR/cert.pem"
    chmod 640 "$DD2601_TLS_DIR/key.pem"
  fi
}

wait_healthy() {
  local service id status
  for service in "$@"; do
    id=$(compose ps -q "$service")
    for _ in $(seq 1 120); do
      status=$(docker inspect --format '{{.State.Health.Status}}' "$id" 2>/dev/null || echo missing)
      [[ $status == healthy ]] && break
      sleep 1
    done
    [[ $status == healthy ]] || die "$service did not become healthy ($status); see: $0 logs $service"
  done
}

cmd_build() {
  "$repo_root/docker/sandbox/build.sh" >&2
  "$here/build.sh"
}

cmd_up() {
  [[ -f $DD2601_ENV_FILE ]] || cmd_init
  [[ ${DD2601_SKIP_BUILD:-0} == 1 ]] || cmd_build
  local work
  work=$(setting DD2601_WORK_DIR)
  mkdir -p "$work" && chmod 755 "$work"
  compose up -d postgres redis
  wait_healthy postgres redis
  say "migrating the database (once, before any new code serves)"
  manage migrate --noinput
  compose up -d
  wait_healthy web   # until gunicorn answers, the proxy's answer is 502
  say "up: https://$(setting DJANGO_ALLOWED_HOSTS | cut -d, -f1):$(setting DD2601_HTTPS_PORT)/"
}

cmd_backup() {
  local dir=${1:?usage: stack.sh backup DIR}
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
  say "database -> $dir/db.dump"
  compose exec -T postgres pg_dump -U dd2601 -Fc dd2601 >"$dir/db.dump"
  say "archives -> $dir/archives.tgz"
  compose run --rm --no-deps -u root -v "$dir:/backup" web tar -C /srv/dd2601/archives -czf /backup/archives.tgz .
  cp "$DD2601_ENV_FILE" "$dir/production.env"   # the secrets belong with the data they unlock
  ls -l "$dir" >&2
}

cmd_restore() {
  local dir=${1:?usage: stack.sh restore DIR}
  dir=$(cd "$dir" && pwd)
  [[ -s $dir/db.dump && -s $dir/archives.tgz ]] || die "$dir holds no db.dump and archives.tgz"
  compose stop proxy web worker beat
  say "restoring the database from $dir/db.dump"
  compose exec -T postgres pg_restore -U dd2601 -d dd2601 --clean --if-exists --no-owner <"$dir/db.dump"
  say "restoring the archives from $dir/archives.tgz"
  compose run --rm --no-deps -u root -v "$dir:/backup:ro" web \
    sh -c 'tar -C /srv/dd2601/archives -xzf /backup/archives.tgz && chown -R 10010:10010 /srv/dd2601/archives'
  compose up -d
}

cmd_upgrade() {
  [[ ${DD2601_SKIP_BUILD:-0} == 1 ]] || cmd_build
  say "draining the workers (each finishes the runs in hand; new uploads wait in the queue)"
  compose stop beat worker
  say "migrating the database (once)"
  compose up -d postgres redis
  wait_healthy postgres redis
  manage migrate --noinput
  compose up -d
}

cmd_worker_env() {
  local addr=${1:?usage: stack.sh worker-env ADDRESS (this host as the worker host reaches it)}
  local https_port
  https_port=$(setting DD2601_HTTPS_PORT)
  cat <<EOF
# A worker host of $(setting COMPOSE_PROJECT_NAME): it needs this file and nothing else of the main host
# (docs/production.md, "Worker hosts"). Set the slots for the machine it runs on.
COMPOSE_PROJECT_NAME=dd2601-worker
DJANGO_PRODUCTION=1
DJANGO_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
DJANGO_ALLOWED_HOSTS=localhost
DATABASE_URL=postgres://dd2601:$(setting POSTGRES_PASSWORD)@$addr:$(setting DD2601_POSTGRES_PORT)/dd2601
CELERY_BROKER_URL=redis://:$(setting REDIS_PASSWORD)@$addr:$(setting DD2601_REDIS_PORT)/0
GRADER_ARCHIVE_URL=https://$addr:$https_port/
GRADER_ARCHIVE_KEY=$(setting GRADER_ARCHIVE_KEY)
REQUESTS_CA_BUNDLE=/tls/cert.pem
GRADER_BACKEND=docker
GRADER_SLOTS=1
GRADER_GPUS=
DD2601_WORK_DIR=/var/lib/dd2601/work
EOF
}

command=${1:-}
[[ -n $command ]] || { sed -n '2,16p' "$0"; exit 2; }
shift
case $command in
  init) cmd_init ;;
  build) cmd_build ;;
  up) cmd_up ;;
  down) compose down ;;
  ps) compose ps ;;
  logs) compose logs --tail 200 "$@" ;;
  manage) manage "$@" ;;
  create-examiner) manage create_examiner "$@" ;;
  import-parts) manage import_assignments ;;
  backup) cmd_backup "$@" ;;
  restore) cmd_restore "$@" ;;
  upgrade) cmd_upgrade ;;
  worker-env) cmd_worker_env "$@" ;;
  compose) compose "$@" ;;
  *) die "unknown command $command (see the top of $0)" ;;
esac
