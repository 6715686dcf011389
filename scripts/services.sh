#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis the tests use are running, starting whichever is
# installed but down. CI calls it before the tests; on a developer machine it is optional.
#
#   bash scripts/services.sh
#
# Only the default local services (127.0.0.1:5432 and 127.0.0.1:6379) are started; with
# DATABASE_URL or REDIS_URL pointing elsewhere, nothing is touched. Fails only when a service
# is down and cannot be started here.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_postgres() {
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [[ -z $version ]] || ! command -v pg_ctlcluster >/dev/null; then
        echo "error: PostgreSQL is down and not installed here (apt-get install postgresql)" >&2
        return 1
    fi
    echo "==> starting PostgreSQL $version" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

start_redis() {
    if ! command -v redis-server >/dev/null; then
        echo "error: Redis is down and not installed here (apt-get install redis-server)" >&2
        return 1
    fi
    echo "==> starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

# wait_for PORT NAME: up to 10 s for a service that was just started.
wait_for() {
    for _ in $(seq 1 100); do
        port_open "$1" && return 0
        sleep 0.1
    done
    echo "error: $2 did not come up on 127.0.0.1:$1" >&2
    return 1
}

if [[ -z ${DATABASE_URL:-} ]] && ! port_open 5432; then
    start_postgres && wait_for 5432 PostgreSQL
fi
if [[ -z ${REDIS_URL:-} ]] && ! port_open 6379; then
    start_redis && wait_for 6379 Redis
fi
