#!/usr/bin/env bash
# nginx (Debian's package) as a peer: the anchor for TLS handshakes and idle memory. It reads
# the environment the Rust peers read (SQUALL_ADDR, SQUALL_WORKERS, SQUALL_TLS_CERT,
# SQUALL_TLS_KEY), writes a config into SQUALL_NGINX_DIR (default: a new temporary
# directory) and execs nginx in the foreground, so the caller's pid is nginx's master.
#
#   GET /plaintext  -> "Hello, World!" (text/plain)      GET /json -> {"message":"Hello, World!"}
#   GET /mib        -> 1 MiB file (application/octet-stream)
#
# Workers are pinned one per CPU of this process's affinity list (worker_cpu_affinity), so
# `taskset -c 0 nginx-peer.sh` with one worker runs nginx's worker on CPU 0. Keep-alive
# limits are high and the access log is off, as for a benchmark.
set -euo pipefail

addr=${SQUALL_ADDR:-127.0.0.1:8080}
workers=${SQUALL_WORKERS:-$(nproc)}
dir=${SQUALL_NGINX_DIR:-$(mktemp -d -t nginx-peer.XXXXXX)}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx ]] || {
    echo "nginx-peer: nginx is not installed (apt-get install nginx-light)" >&2
    exit 1
}

mkdir -p "$dir/www"
# Workers may run as an unprivileged user (nginx's `user`, when started as root).
chmod 755 "$dir" "$dir/www"
[[ -s $dir/www/mib ]] || head -c 1048576 /dev/zero | tr '\0' x >"$dir/www/mib"
chmod 644 "$dir/www/mib"

# One affinity bitmask per worker, cycling over the CPUs this process may use.
# (No process substitution here: its process could outlive the exec as nginx's child.)
cpus=$(grep Cpus_allowed_list /proc/self/status)
cpus=${cpus##*[[:space:]]}
list=()
IFS=',' read -ra ranges <<<"$cpus"
for range in "${ranges[@]}"; do
    for ((cpu = ${range%-*}; cpu <= ${range#*-}; cpu++)); do list+=("$cpu"); done
done
masks=()
for ((i = 0; i < workers; i++)); do
    cpu=${list[i % ${#list[@]}]}
    mask=1
    for ((j = 0; j < cpu; j++)); do mask+=0; done
    masks+=("$mask")
done

listen="listen $addr reuseport;"
tls=""
if [[ -n ${SQUALL_TLS_CERT:-} ]]; then
    listen="listen $addr ssl reuseport;"
    tls="ssl_certificate ${SQUALL_TLS_CERT};
        ssl_certificate_key ${SQUALL_TLS_KEY:?SQUALL_TLS_CERT is set, so SQUALL_TLS_KEY must be};
        ssl_protocols TLSv1.2 TLSv1.3;"
fi

cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes $workers;
worker_cpu_affinity ${masks[*]};
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 19000; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 3600s;
    client_header_timeout 3600s;
    client_body_timeout 3600s;
    send_timeout 3600s;
    server {
        $listen
        $tls
        root $dir/www;
        location = /plaintext { default_type text/plain; return 200 "Hello, World!"; }
        location = /json { default_type application/json; return 200 '{"message":"Hello, World!"}'; }
        location = /mib { default_type application/octet-stream; }
    }
}
CONF
echo "nginx on $addr with $workers worker(s), config $dir/nginx.conf" >&2
exec "$nginx" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
