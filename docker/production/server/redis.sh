#!/bin/sh
# Redis, the Celery broker: append-only persistence in the redisdata volume (a restart keeps every queued
# token), a password from the env file, reachable by worker hosts on the address the stack publishes.
set -eu
: "${REDIS_PASSWORD:?set REDIS_PASSWORD in the env file (docker/production/stack.sh init writes one)}"
mkdir -p /data
chown redis:redis /data
umask 077
conf=/run/redis.conf
printf 'bind 0.0.0.0 ::\nprotected-mode no\ndir /data\nappendonly yes\nappendfsync everysec\nsave ""\nrequirepass %s\n' \
  "$REDIS_PASSWORD" >"$conf"
chown redis "$conf"
exec setpriv --reuid=redis --regid=redis --init-groups redis-server "$conf"
