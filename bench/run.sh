#!/usr/bin/env bash
# nyro-gw throughput benchmark against nginx, measured in the same run.
#
#   bench/run.sh                       # uses target/release/nyro-gw
#   NYRO_GW_BIN=/path/to/nyro-gw bench/run.sh
#
# Targets, all on loopback, all in front of one nginx static upstream:
#   upstream    wrk -> upstream nginx (the ceiling)
#   nginx       wrk -> nginx proxy_pass (keepalive pool) -> upstream
#   nyro-none   wrk -> nyro-gw, auth = "none" route -> upstream
#   nyro-jwt    wrk -> nyro-gw, auth = "required" + 3 injections, HS256 -> upstream
#
# Exit: 0 pass; 1 a threshold failed or the run went wrong (startup,
# non-2xx responses); 2 a tool is missing (nothing is installed here).
# See bench/README.md for the knobs and the reasoning behind them.
set -euo pipefail

BIN=${NYRO_GW_BIN:-target/release/nyro-gw}
WORKERS=${BENCH_WORKERS:-1}          # nginx worker_processes AND nyro-gw tokio workers
CONNS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-5s}       # per measured run
WARMUP=${BENCH_WARMUP:-2s}           # per target, before the measured rounds
ROUNDS=${BENCH_ROUNDS:-3}            # measured runs per target, alternating; median taken
MIN_RATIO=${BENCH_MIN_RATIO:-0.5}    # nyro-none req/s must be >= this x nginx
MIN_JWT_RATIO=${BENCH_MIN_JWT_RATIO:-0.35}  # nyro-jwt req/s must be >= this x nginx
MAX_RSS_MIB=${BENCH_MAX_RSS_MIB:-64} # nyro-gw peak RSS (VmHWM) must be below this

# --- tools: checked, never installed -----------------------------------
missing=()
for tool in nginx wrk awk sort mktemp; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ -x $BIN ]] || missing+=("nyro-gw binary at $BIN (cargo build --release, or set NYRO_GW_BIN)")
if ((${#missing[@]})); then
    echo "bench: missing: ${missing[*]}" >&2
    echo "bench: install with e.g. apt-get install -y nginx wrk" >&2
    exit 2
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# --- cleanup: everything started here dies on exit ----------------------
DIR=$(mktemp -d "${TMPDIR:-/tmp}/nyro-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Bounded wait: a process that ignores TERM gets KILL after ~3s.
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die() { echo "bench: $*" >&2; exit 1; }

# A free loopback port: random pick, refused connection means free.
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "no free port found"
}

# Waits until something accepts on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# One HTTP/1.1 request with bash only; prints the status line.
http_status() { # port path [header]
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n%s\r\n' "$2" "${3:+$3$'\r\n'}" >&3
    IFS= read -r -t 5 line <&3 || true
    exec 3<&-
    echo "${line%$'\r'}"
}

UP_PORT=$(free_port)
NGX_PORT=$(free_port)
while [[ $NGX_PORT == "$UP_PORT" ]]; do NGX_PORT=$(free_port); done

# --- upstream: nginx with a fixed 200-byte JSON body --------------------
# /jwt/ answers 200 only when nyro-gw injected the claims, so a broken
# auth path shows up as non-2xx responses instead of a fast number.
BODY='{"status":"ok","service":"bench-upstream","items":[1,2,3,4,5,6,7,8],"message":"a fixed body of two hundred bytes, served by nginx from memory","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
((${#BODY} == 200)) || die "body is ${#BODY} bytes, want 200"

common_conf() { # name
    cat <<EOF
daemon off;
master_process on;
pid $DIR/$1.pid;
error_log $DIR/$1.error.log warn;
events { worker_connections 4096; }
EOF
}
http_common='access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
    client_body_temp_path CLIENT; proxy_temp_path PROXY; fastcgi_temp_path FASTCGI;
    uwsgi_temp_path UWSGI; scgi_temp_path SCGI;'
http_common=${http_common//CLIENT/$DIR/tmp_client}
http_common=${http_common//PROXY/$DIR/tmp_proxy}
http_common=${http_common//FASTCGI/$DIR/tmp_fastcgi}
http_common=${http_common//UWSGI/$DIR/tmp_uwsgi}
http_common=${http_common//SCGI/$DIR/tmp_scgi}

{
    common_conf upstream
    echo "worker_processes 1;"
    cat <<EOF
http {
    $http_common
    server {
        listen 127.0.0.1:$UP_PORT reuseport;
        default_type application/json;
        location /jwt/ {
            if (\$http_x_company_id != "c1") { return 400; }
            return 200 '$BODY';
        }
        location / { return 200 '$BODY'; }
    }
}
EOF
} >"$DIR/upstream.conf"

# --- baseline: nginx reverse proxy with an upstream keepalive pool ------
{
    common_conf proxy
    echo "worker_processes $WORKERS;"
    cat <<EOF
http {
    $http_common
    upstream backend {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGX_PORT reuseport;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
} >"$DIR/proxy.conf"

# nginx wants to own its prefix and error log before reading the config.
chmod 755 "$DIR"
for name in upstream proxy; do
    nginx -p "$DIR" -e "$DIR/$name.error.log" -t -q -c "$DIR/$name.conf" \
        || die "nginx rejected $name.conf"
    nginx -p "$DIR" -e "$DIR/$name.error.log" -c "$DIR/$name.conf" &
    PIDS+=($!)
done
NGX_PID=${PIDS[1]}
wait_port "$UP_PORT" || die "upstream nginx did not start: $(cat "$DIR/upstream.error.log")"
wait_port "$NGX_PORT" || die "proxy nginx did not start: $(cat "$DIR/proxy.error.log")"

# --- candidate: nyro-gw ---------------------------------------------------
SECRET="bench-secret-bench-secret-bench-secret-0123"
cat >"$DIR/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:0"
connect_timeout = "2s"
request_timeout = "10s"
shutdown_grace = "2s"

[auth]
secret = "$SECRET"

[[routes]]
name = "open"
prefix = "/open"
upstream = "http://127.0.0.1:$UP_PORT"
auth = "none"

[[routes]]
name = "jwt"
prefix = "/jwt"
upstream = "http://127.0.0.1:$UP_PORT"
auth = "required"
[routes.inject]
"X-User-ID" = "sub"
"X-Company-ID" = { claim = "app_metadata.company_id", required = true }
"X-User-Email" = "email"
EOF
TOKEN=$("$BIN" token mint --config "$DIR/gateway.toml" --ttl 1h \
    --claims '{"sub":"u1","email":"u1@example.com","app_metadata":{"company_id":"c1"}}') \
    || die "token mint failed"

# warn silences the per-request lines (info); the serving line says the port.
TOKIO_WORKER_THREADS=$WORKERS GATEWAY_LOG_LEVEL='warn,nyro_gw::cmd::serve=info' NYRO_GW_CONFIG= RUST_LOG= \
    "$BIN" serve --config "$DIR/gateway.toml" >"$DIR/nyro.log" 2>&1 &
NYRO_PID=$!
PIDS+=("$NYRO_PID")
NYRO_PORT=
for _ in $(seq 100); do
    NYRO_PORT=$(sed -n 's/.*"nyro-gw serving".*"listen":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$DIR/nyro.log" | head -1)
    [[ -n $NYRO_PORT ]] && break
    kill -0 "$NYRO_PID" 2>/dev/null || die "nyro-gw exited: $(cat "$DIR/nyro.log")"
    sleep 0.05
done
[[ -n $NYRO_PORT ]] || die "nyro-gw did not report its port: $(cat "$DIR/nyro.log")"

# --- sanity: every target answers 200 before we time it ------------------
declare -A URL HDR
URL[upstream]="http://127.0.0.1:$UP_PORT/open/items"
URL[nginx]="http://127.0.0.1:$NGX_PORT/open/items"
URL[nyro-none]="http://127.0.0.1:$NYRO_PORT/open/items"
URL[nyro-jwt]="http://127.0.0.1:$NYRO_PORT/jwt/items"
HDR[nyro-jwt]="Authorization: Bearer $TOKEN"
TARGETS=(upstream nginx nyro-none nyro-jwt)
for t in "${TARGETS[@]}"; do
    url=${URL[$t]#http://127.0.0.1:}
    st=$(http_status "${url%%/*}" "/${url#*/}" "${HDR[$t]:-}")
    [[ $st == "HTTP/1.1 200"* ]] || die "$t answered '$st', want 200"
done
st=$(http_status "$NYRO_PORT" /jwt/items)
[[ $st == "HTTP/1.1 401"* ]] || die "nyro-jwt without a token answered '$st', want 401"

# --- load ----------------------------------------------------------------
# Prints "req_per_s p99_ms"; fails on socket errors or non-2xx answers.
run_wrk() { # target duration
    local t=$1 out rps p99 bad
    local args=(-t1 -c"$CONNS" -d"$2" --latency --timeout 5s)
    [[ -n ${HDR[$t]:-} ]] && args+=(-H "${HDR[$t]}")
    out=$(wrk "${args[@]}" "${URL[$t]}" 2>&1) || die "wrk failed on $t: $out"
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF} /Socket errors:/ {print "socket errors"}' <<<"$out")
    [[ -z $bad ]] || die "$t: bad responses ($bad):"$'\n'"$out"
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
        printf "%.2f", v }' <<<"$out")
    [[ -n $rps && -n $p99 ]] || die "could not parse wrk output for $t:"$'\n'"$out"
    echo "$rps $p99"
}
median() { tr ' ' '\n' | awk NF | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "bench: $(nproc) cores; workers=$WORKERS (nginx worker_processes, TOKIO_WORKER_THREADS); wrk -t1 -c$CONNS -d$DURATION x$ROUNDS rounds, warm-up $WARMUP"
for t in "${TARGETS[@]}"; do run_wrk "$t" "$WARMUP" >/dev/null; done
declare -A RPS P99
for r in $(seq "$ROUNDS"); do
    line="round $r:"
    for t in "${TARGETS[@]}"; do
        res=$(run_wrk "$t" "$DURATION") || exit 1
        read -r rps p99 <<<"$res"
        RPS[$t]+="$rps "
        P99[$t]+="$p99 "
        line+=" $t=${rps%.*}"
    done
    echo "bench: $line"
done

# --- memory --------------------------------------------------------------
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
nginx_kib() { # field: sum over the proxy nginx master and its workers
    local total pid
    total=$(kib "$NGX_PID" "$1")
    for f in /proc/[0-9]*/status; do
        pid=${f#/proc/}; pid=${pid%/status}
        [[ $(awk '$1 == "PPid:" {print $2}' "$f" 2>/dev/null) == "$NGX_PID" ]] || continue
        total=$((total + $(kib "$pid" "$1")))
    done
    echo "$total"
}
NYRO_RSS=$(kib "$NYRO_PID" VmRSS); NYRO_HWM=$(kib "$NYRO_PID" VmHWM)
NGX_RSS=$(nginx_kib VmRSS); NGX_HWM=$(nginx_kib VmHWM)

# --- report --------------------------------------------------------------
declare -A MRPS MP99
for t in "${TARGETS[@]}"; do
    MRPS[$t]=$(median <<<"${RPS[$t]}")
    MP99[$t]=$(median <<<"${P99[$t]}")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
printf '%-11s %12s %10s %12s\n' target "req/s" "p99 ms" "vs nginx"
printf '%-11s %12s %10s %12s\n' ----------- ------------ ---------- ------------
for t in "${TARGETS[@]}"; do
    printf '%-11s %12.0f %10.2f %11sx\n' "$t" "${MRPS[$t]}" "${MP99[$t]}" "$(ratio "${MRPS[$t]}" "${MRPS[nginx]}")"
done
echo
printf '%-11s %12s %12s\n' memory "RSS MiB" "peak MiB"
printf '%-11s %12s %12s\n' nginx "$(mib "$NGX_RSS")" "$(mib "$NGX_HWM")"
printf '%-11s %12s %12s\n' nyro-gw "$(mib "$NYRO_RSS")" "$(mib "$NYRO_HWM")"
echo "(nginx: proxy master + workers summed; nyro-gw: one process, after load)"
echo

NONE_RATIO=$(ratio "${MRPS[nyro-none]}" "${MRPS[nginx]}")
JWT_RATIO=$(ratio "${MRPS[nyro-jwt]}" "${MRPS[nginx]}")
fail=0
check() { # description ok
    if [[ $2 == 1 ]]; then echo "PASS  $1"; else echo "FAIL  $1"; fail=1; fi
}
check "nyro-none/nginx req/s = $NONE_RATIO >= BENCH_MIN_RATIO=$MIN_RATIO" \
    "$(awk -v a="$NONE_RATIO" -v b="$MIN_RATIO" 'BEGIN { print (a >= b) ? 1 : 0 }')"
check "nyro-jwt/nginx req/s = $JWT_RATIO >= BENCH_MIN_JWT_RATIO=$MIN_JWT_RATIO" \
    "$(awk -v a="$JWT_RATIO" -v b="$MIN_JWT_RATIO" 'BEGIN { print (a >= b) ? 1 : 0 }')"
check "nyro-gw peak RSS = $(mib "$NYRO_HWM") MiB < BENCH_MAX_RSS_MIB=$MAX_RSS_MIB" \
    "$(awk -v k="$NYRO_HWM" -v m="$MAX_RSS_MIB" 'BEGIN { print (k > 0 && k < m * 1024) ? 1 : 0 }')"
exit "$fail"
