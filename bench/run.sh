#!/usr/bin/env bash
# nyro-gw against nginx and HAProxy, plain and doing the same JWT job,
# measured in the same run, interleaved, in front of one nginx upstream.
#
#   bench/run.sh            # the gated scenarios (what CI runs)
#   bench/run.sh --full     # every scenario
#   NYRO_GW_BIN=/path/to/nyro-gw bench/run.sh
#
# Targets, all on loopback (see bench/README.md for the exact configs):
#   upstream     wrk -> upstream nginx (the ceiling)
#   nginx        nginx proxy_pass, plain
#   haproxy      HAProxy, plain
#   haproxy-jwt  HAProxy doing the JWT job natively (jwt_verify & co, 2.5+)
#   nginx-njs    nginx + njs doing the JWT job (bench/njs-jwt.js)
#   nyro-none    nyro-gw, an auth = "none" route
#   nyro-jwt     nyro-gw, auth = "required" + 3 injections, HS256
#   nyro-es256   the same route, an ES256 token verified via JWKS
#   nyro-rl      nyro-jwt's job plus a per-company rate limit, local buckets
#                (a limit never reached: the cost of deciding, not refusing)
#   nyro-rl-redis  the same limit shared through Redis (a second nyro-gw
#                with [rate_limit] redis_url; its CPU column is nyro-gw's,
#                Redis's own time is not in it)
# The JWT job: HS256 verified, exp, aud = "authenticated",
# app_metadata.company_id required, X-User-ID / X-Company-ID / X-User-Email
# set upstream; the upstream answers 400 unless all three arrived.
#
# Scenarios: main (wrk -t1 -c32 keep-alive; nyro-gw with its default
# workers, nginx and HAProxy pinned to one worker) and conn1k (1,000
# keep-alive connections, memory) are gated; --full adds equal (every proxy
# at the same number of workers), h2 (h2load), upload (1 MiB POSTs) and
# cold (a fresh token on every request, more than nyro-gw's cache holds).
#
# Exit: 0 pass; 1 a gate failed or the run went wrong (startup, a JWT
# target that does not do the job, errors under load); 2 a tool is missing
# (nothing is installed here; optional tools skip their targets, except
# with CI=true).
set -euo pipefail

FULL=0
for arg in "$@"; do
    case $arg in
        --full) FULL=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "bench: unknown argument '$arg' (try --full or --help)" >&2
            exit 2
            ;;
    esac
done

BIN=${NYRO_GW_BIN:-target/release/nyro-gw}
CONNS=${BENCH_CONNECTIONS:-32}             # wrk -c, main and equal
# Five rounds of 3 s, not three of 5 s: the same time, and a median that
# two runs disturbed by the host (+-25 % on a shared VM) do not move.
DURATION=${BENCH_DURATION:-3s}             # per measured run
WARMUP=${BENCH_WARMUP:-2s}                 # per target and scenario, before the rounds
ROUNDS=${BENCH_ROUNDS:-5}                  # measured runs per target, interleaved; median
EQUAL_WORKERS=${BENCH_EQUAL_WORKERS:-$(nproc)}
BIG_CONNS=${BENCH_BIG_CONNECTIONS:-1000}   # conn1k
UPLOAD_CONNS=${BENCH_UPLOAD_CONNECTIONS:-8}
H2_CONNS=${BENCH_H2_CONNECTIONS:-8}
H2_STREAMS=${BENCH_H2_STREAMS:-4}
COLD_TOKENS=${BENCH_COLD_TOKENS:-200000}  # distinct tokens per target in cold
NJS_MODULE=${BENCH_NJS_MODULE:-/usr/lib/nginx/modules/ngx_http_js_module.so}
# Gates (exit 1): loose on purpose, noise on a shared box is +-15 %.
MIN_RATIO=${BENCH_MIN_RATIO:-0.75}           # nyro-none req/s >= this x nginx
MIN_JWT_RATIO=${BENCH_MIN_JWT_RATIO:-0.7}   # nyro-jwt req/s >= this x nginx
MAX_CPU_RATIO=${BENCH_MAX_CPU_RATIO:-1.5}      # nyro-jwt CPU/request <= this x nginx
MIN_ES256_RATIO=${BENCH_MIN_ES256_RATIO:-0.8} # nyro-es256 req/s >= this x nyro-jwt
MAX_RSS_MIB=${BENCH_MAX_RSS_MIB:-32}         # nyro-gw peak RSS after main
MAX_IDLE_RSS_MIB=${BENCH_MAX_IDLE_RSS_MIB:-16}
MAX_LOAD_RSS_MIB=${BENCH_MAX_LOAD_RSS_MIB:-72}        # conn1k, under load
MAX_SETTLED_RSS_MIB=${BENCH_MAX_SETTLED_RSS_MIB:-40} # conn1k, 30 s after
CI=${CI:-false}
if ((FULL)); then SCENARIOS_DEFAULT="main conn1k upload h2 cold equal"; else SCENARIOS_DEFAULT="main conn1k"; fi
SCENARIOS=" ${BENCH_SCENARIOS:-$SCENARIOS_DEFAULT} "   # e.g. BENCH_SCENARIOS=main for profiling
runs() { [[ $SCENARIOS == *" $1 "* ]]; }

# --- tools: checked, never installed -----------------------------------
missing=()
for tool in nginx wrk awk sort mktemp getconf; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ -x $BIN ]] || missing+=("nyro-gw binary at $BIN (cargo build --release, or set NYRO_GW_BIN)")
if ((${#missing[@]})); then
    echo "bench: missing: ${missing[*]}" >&2
    echo "bench: install with e.g. apt-get install -y nginx wrk" >&2
    exit 2
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd)

# Optional tools: without one its targets are skipped, saying why; with
# CI=true that is a failure instead (exit 2), so CI never measures less
# than it claims.
declare -A SKIP
optional_missing() { # what install-hint targets...
    local what=$1 hint=$2
    shift 2
    if [[ $CI == true ]]; then
        echo "bench: missing: $what (CI=true: not skipping $*; $hint)" >&2
        exit 2
    fi
    echo "bench: skipping $*: $what not found ($hint)"
    local t
    for t in "$@"; do SKIP[$t]=1; done
}
if ! command -v haproxy >/dev/null 2>&1; then
    optional_missing haproxy "apt-get install -y haproxy" haproxy haproxy-jwt
else
    hv=$(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}')
    if ! awk -v v="$hv" 'BEGIN { split(v, a, "."); exit !(a[1] > 2 || (a[1] == 2 && a[2] >= 5)) }'; then
        optional_missing "HAProxy 2.5+ (have $hv) for jwt_verify" "apt-get install -y haproxy" haproxy-jwt
    fi
fi
[[ -e $NJS_MODULE ]] || optional_missing "njs module at $NJS_MODULE (BENCH_NJS_MODULE)" \
    "apt-get install -y libnginx-mod-http-js" nginx-njs
command -v openssl >/dev/null 2>&1 || optional_missing "openssl (makes the ES256 key)" \
    "apt-get install -y openssl" nyro-es256
command -v redis-server >/dev/null 2>&1 || optional_missing redis-server \
    "apt-get install -y redis-server" nyro-rl-redis
H2LOAD=1
if runs h2 && ! command -v h2load >/dev/null 2>&1; then
    optional_missing h2load "apt-get install -y nghttp2-client" "the h2 scenario"
    H2LOAD=0
fi

# 1,000 client connections plus as many upstream ones, per process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
CLK_TCK=$(getconf CLK_TCK)
PAGE_KIB=$(($(getconf PAGESIZE) / 1024))

# --- cleanup: everything started here dies on exit ----------------------
DIR=$(mktemp -d "${TMPDIR:-/tmp}/nyro-bench.XXXXXX")
PIDS=()
declare -A GROUP_PID # process group (up, nginx, njs, haproxy, nyro) -> root pid
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    # Bounded wait: a process that ignores TERM gets KILL after ~3s.
    for _ in $(seq 30); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die() { echo "bench: $*" >&2; exit 1; }
has() { [[ -z ${SKIP[$1]:-} ]]; }

# A free loopback port into variable $1: random pick below the ephemeral
# range (32768+, where the many client sockets of a run land), refused
# connection means free, never one handed out before in this run.
declare -A TAKEN
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000))
        [[ -n ${TAKEN[$p]:-} ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            TAKEN[$p]=1
            printf -v "$1" '%s' "$p"
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

# One HTTP/1.1 request with bash only; prints the status code.
http_status() { # port path [header]
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n%s\r\n' "$2" "${3:+$3$'\r\n'}" >&3
    IFS= read -r -t 5 line <&3 || true
    exec 3<&-
    line=${line#HTTP/1.1 }
    echo "${line%% *}"
}

# --- /proc accounting ----------------------------------------------------
# A group is its root process and the root's children (nginx workers);
# HAProxy (-db) and nyro-gw are one process with threads, which /proc/PID/stat
# already sums. Fields after the last ')' of stat: $2 ppid, $12 utime,
# $13 stime, $22 rss pages.
# Every process's stat line; processes that exit between the glob and the
# read are skipped (cat's failure must not end the run under pipefail).
procs() { cat /proc/[0-9]*/stat 2>/dev/null || true; }
proc_sum() { # root field-number -> sum over the group
    procs | awk -v root="$1" -v f="$2" '
        { pid = $1; sub(/.*\) /, "") }
        pid == root || $2 == root { if (f == "cpu") s += $12 + $13; else s += $f }
        END { print s + 0 }'
}
group_ticks() { proc_sum "${GROUP_PID[$1]}" cpu; }
group_rss_kib() { echo $(($(proc_sum "${GROUP_PID[$1]}" 22) * PAGE_KIB)); }
group_hwm_kib() { # peak RSS (VmHWM) summed over the group
    local root=${GROUP_PID[$1]} total=0 pid kib
    for pid in $(procs | awk -v root="$root" '{ pid = $1; sub(/.*\) /, "") } pid == root || $2 == root { print pid }'); do
        kib=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# --- upstream: nginx with a fixed 200-byte JSON body --------------------
BODY='{"status":"ok","service":"bench-upstream","items":[1,2,3,4,5,6,7,8],"message":"a fixed body of two hundred bytes, served by nginx from memory","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
((${#BODY} == 200)) || die "body is ${#BODY} bytes, want 200"
SECRET="bench-secret-bench-secret-bench-secret-0123"

nginx_head() { # name workers
    cat <<EOF
daemon off;
master_process on;
worker_processes $2;
pid $DIR/$1.pid;
error_log $DIR/$1.error.log warn;
events { worker_connections 8192; }
EOF
}
# Both proxies and the upstream: no access log, keep-alive kept (neither
# side pays reconnects the other does not), bodies of any size streamed.
http_common="access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
    client_max_body_size 0;
    client_body_temp_path $DIR/tmp_client; proxy_temp_path $DIR/tmp_proxy;
    fastcgi_temp_path $DIR/tmp_fastcgi; uwsgi_temp_path $DIR/tmp_uwsgi; scgi_temp_path $DIR/tmp_scgi;"
chmod 755 "$DIR"

start_nginx() { # group conf
    nginx -p "$DIR" -e "$DIR/$1.error.log" -t -q -c "$2" || die "nginx rejected $2"
    nginx -p "$DIR" -e "$DIR/$1.error.log" -c "$2" &
    PIDS+=($!)
    GROUP_PID[$1]=$!
}

free_port UP_PORT
{
    nginx_head upstream 1
    cat <<EOF
http {
    $http_common
    # The JWT targets' headers must all arrive: 400 otherwise, so a proxy
    # that skips the job shows up as errors, not as a fast number.
    map "\$http_x_company_id|\$http_x_user_id|\$http_x_user_email" \$claims_ok {
        "c1|u1|u1@example.com" 1;
        default 0;
    }
    server {
        listen 127.0.0.1:$UP_PORT reuseport backlog=4096;
        default_type application/json;
        location = /.well-known/jwks.json { alias $DIR/jwks.json; }
        location /jwt/ {
            if (\$claims_ok = 0) { return 400; }
            return 200 '$BODY';
        }
        location / { return 200 '$BODY'; }
        # Uploads: the whole body is read first (mirror_request_body waits
        # for it, in memory), as a real upload endpoint would; answering
        # before it makes nginx-as-proxy drop the connection mid-body, an
        # artefact, not a result. The static handler then refuses a POST to
        # its file (405), which error_page turns into the usual 200 body.
        location = /sink { internal; return 204; }
        location @uploaded { return 200 '$BODY'; }
        location /jwt/upload {
            if (\$claims_ok = 0) { return 400; }
            mirror /sink; mirror_request_body on; client_body_buffer_size 2m;
            root $DIR; try_files /body.json =500; error_page 405 =200 @uploaded;
        }
        location /open/upload {
            mirror /sink; mirror_request_body on; client_body_buffer_size 2m;
            root $DIR; try_files /body.json =500; error_page 405 =200 @uploaded;
        }
    }
}
EOF
} >"$DIR/upstream.conf"
printf '%s' "$BODY" >"$DIR/body.json"

# --- ES256 key and its JWKS (served by the upstream as a static file) ---
ES_KEY=
if has nyro-es256; then
    ES_KEY=$DIR/es256.pem
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ES_KEY" 2>/dev/null \
        || die "openssl could not make a P-256 key"
    # The uncompressed point is the last 65 bytes of the SPKI DER: 04 | x | y.
    b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
    openssl pkey -in "$ES_KEY" -pubout -outform DER 2>/dev/null | tail -c 64 >"$DIR/point"
    X=$(head -c 32 "$DIR/point" | b64url)
    Y=$(tail -c 32 "$DIR/point" | b64url)
    printf '{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"bench-es256","x":"%s","y":"%s"}]}\n' \
        "$X" "$Y" >"$DIR/jwks.json"
else
    echo '{"keys":[]}' >"$DIR/jwks.json"
fi

start_nginx up "$DIR/upstream.conf"
wait_port "$UP_PORT" || die "upstream nginx did not start: $(cat "$DIR/up.error.log")"

# --- Redis for nyro-rl-redis (no persistence) ----------------------------
if has nyro-rl-redis; then
    free_port REDIS_PORT
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$DIR" >"$DIR/redis.log" 2>&1 &
    PIDS+=($!)
    wait_port "$REDIS_PORT" || die "redis-server did not start: $(cat "$DIR/redis.log")"
fi

# --- the proxies, started per scenario with a worker count --------------
declare -A PORT H2PORT
start_proxies() { # nginx/haproxy workers, nyro workers ("default" = unset)
    local w=$1 nw=$2
    free_port "PORT[nginx]"; free_port "H2PORT[nginx]"
    # nginx reverse proxy: upstream keepalive pool, HTTP/1.1, X-Forwarded-*.
    local proxy_common="proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_request_buffering off;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;"
    local upstream_block="upstream backend {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }"
    {
        nginx_head nginx "$w"
        cat <<EOF
http {
    $http_common
    $upstream_block
    server {
        listen 127.0.0.1:${PORT[nginx]} reuseport backlog=4096;
        listen 127.0.0.1:${H2PORT[nginx]} http2 reuseport backlog=4096;
        location / {
            proxy_pass http://backend;
            $proxy_common
        }
    }
}
EOF
    } >"$DIR/nginx.conf"
    start_nginx nginx "$DIR/nginx.conf"

    if has nginx-njs; then
        free_port "PORT[nginx-njs]"; free_port "H2PORT[nginx-njs]"
        {
            echo "load_module $NJS_MODULE;"
            nginx_head njs "$w"
            cat <<EOF
http {
    $http_common
    $upstream_block
    js_import jwt from $HERE/njs-jwt.js;
    js_var \$jwt_secret "$SECRET";
    js_var \$jwt_sub;
    js_var \$jwt_company;
    js_var \$jwt_email;
    js_set \$jwt_verdict jwt.verdict;
    server {
        listen 127.0.0.1:${PORT[nginx-njs]} reuseport backlog=4096;
        listen 127.0.0.1:${H2PORT[nginx-njs]} http2 reuseport backlog=4096;
        location / {
            if (\$jwt_verdict = 401) { return 401; }
            if (\$jwt_verdict = 403) { return 403; }
            proxy_pass http://backend;
            $proxy_common
            proxy_set_header X-User-ID \$jwt_sub;
            proxy_set_header X-Company-ID \$jwt_company;
            proxy_set_header X-User-Email \$jwt_email;
        }
    }
}
EOF
        } >"$DIR/njs.conf"
        start_nginx njs "$DIR/njs.conf"
    fi

    if has haproxy; then
        free_port "PORT[haproxy]"; free_port "H2PORT[haproxy]"
        free_port "PORT[haproxy-jwt]"; free_port "H2PORT[haproxy-jwt]"
        {
            cat <<EOF
global
    nbthread $w
    maxconn 8192

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive
    option forwardfor

backend up
    server up 127.0.0.1:$UP_PORT

frontend plain
    bind 127.0.0.1:${PORT[haproxy]}
    bind 127.0.0.1:${H2PORT[haproxy]} proto h2
    default_backend up
EOF
            if has haproxy-jwt; then cat <<EOF

# The JWT job natively (HAProxy 2.5+): HS256, exp, aud, company_id, 3 headers.
frontend jwt
    bind 127.0.0.1:${PORT[haproxy-jwt]}
    bind 127.0.0.1:${H2PORT[haproxy-jwt]} proto h2
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
    http-request deny status 401 unless { var(txn.alg) -m str HS256 }
    http-request deny status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$SECRET") -m int 1 }
    http-request set-var(txn.now) date()
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
    http-request deny status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
    http-request deny status 401 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m str authenticated }
    http-request set-var(txn.company) var(txn.bearer),jwt_payload_query('\$.app_metadata.company_id')
    http-request deny status 403 unless { var(txn.company),length -m int gt 0 }
    http-request set-header X-User-ID %[var(txn.bearer),jwt_payload_query('\$.sub')]
    http-request set-header X-Company-ID %[var(txn.company)]
    http-request set-header X-User-Email %[var(txn.bearer),jwt_payload_query('\$.email')]
    default_backend up
EOF
            fi
        } >"$DIR/haproxy.cfg"
        haproxy -c -q -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 || die "haproxy rejected its config: $(cat "$DIR/haproxy.log")"
        haproxy -db -f "$DIR/haproxy.cfg" >>"$DIR/haproxy.log" 2>&1 &
        PIDS+=($!)
        GROUP_PID[haproxy]=$!
    fi

    cat >"$DIR/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:0"
connect_timeout = "2s"
request_timeout = "10s"
shutdown_grace = "2s"
$([[ $nw == default ]] || echo "workers = $nw")

[auth]
secret = "$SECRET"
algorithms = ["HS256", "ES256"]
jwks_url = "http://127.0.0.1:$UP_PORT/.well-known/jwks.json"

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

# nyro-jwt's job and a per-company limit it never reaches.
[[routes]]
name = "rl"
prefix = "/rl"
upstream = "http://127.0.0.1:$UP_PORT"
auth = "required"
[routes.inject]
"X-User-ID" = "sub"
"X-Company-ID" = { claim = "app_metadata.company_id", required = true }
"X-User-Email" = "email"
[[routes.limits]]
name = "per-company"
key = "claim:app_metadata.company_id"
rate = "100000000/s"
burst = 100000000
EOF
    # warn silences the per-request lines (info); the serving line says the port.
    GATEWAY_LOG_LEVEL='warn,nyro_gw::cmd::serve=info' NYRO_GW_CONFIG= RUST_LOG= \
        "$BIN" serve --config "$DIR/gateway.toml" >"$DIR/nyro.log" 2>&1 &
    PIDS+=($!)
    GROUP_PID[nyro]=$!
    local port=
    for _ in $(seq 100); do
        port=$(sed -n 's/.*"nyro-gw serving".*"listen":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$DIR/nyro.log" | head -1 || true)
        [[ -n $port ]] && break
        kill -0 "${GROUP_PID[nyro]}" 2>/dev/null || die "nyro-gw exited: $(cat "$DIR/nyro.log")"
        sleep 0.05
    done
    [[ -n $port ]] || die "nyro-gw did not report its port: $(cat "$DIR/nyro.log")"
    PORT[nyro-none]=$port; PORT[nyro-jwt]=$port; PORT[nyro-es256]=$port; PORT[nyro-rl]=$port
    H2PORT[nyro-none]=$port; H2PORT[nyro-jwt]=$port; H2PORT[nyro-es256]=$port; H2PORT[nyro-rl]=$port

    if has nyro-rl-redis; then
        { cat "$DIR/gateway.toml"; printf '\n[rate_limit]\nredis_url = "redis://127.0.0.1:%s"\n' "$REDIS_PORT"; } \
            >"$DIR/gateway-redis.toml"
        GATEWAY_LOG_LEVEL='warn,nyro_gw::cmd::serve=info' NYRO_GW_CONFIG= RUST_LOG= \
            "$BIN" serve --config "$DIR/gateway-redis.toml" >"$DIR/nyro2.log" 2>&1 &
        PIDS+=($!)
        GROUP_PID[nyro2]=$!
        port=
        for _ in $(seq 100); do
            port=$(sed -n 's/.*"nyro-gw serving".*"listen":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$DIR/nyro2.log" | head -1 || true)
            [[ -n $port ]] && break
            kill -0 "${GROUP_PID[nyro2]}" 2>/dev/null || die "nyro-gw (Redis) exited: $(cat "$DIR/nyro2.log")"
            sleep 0.05
        done
        [[ -n $port ]] || die "nyro-gw (Redis) did not report its port: $(cat "$DIR/nyro2.log")"
        PORT[nyro-rl-redis]=$port; H2PORT[nyro-rl-redis]=$port
    fi

    wait_port "${PORT[nginx]}" || die "nginx did not start: $(cat "$DIR/nginx.error.log")"
    ! has nginx-njs || wait_port "${PORT[nginx-njs]}" || die "nginx-njs did not start: $(cat "$DIR/njs.error.log")"
    ! has haproxy || wait_port "${PORT[haproxy]}" || die "haproxy did not start: $(cat "$DIR/haproxy.log")"
    # nginx forks its workers after binding: wait for them, or the
    # accounting would miss one.
    local g want n
    for g in nginx njs; do
        [[ -n ${GROUP_PID[$g]:-} ]] || continue
        for _ in $(seq 100); do
            n=$(procs | awk -v root="${GROUP_PID[$g]}" '{ sub(/.*\) /, "") } $2 == root { n++ } END { print n + 0 }')
            ((n >= w)) && break
            sleep 0.05
        done
    done
}

stop_proxies() {
    local g
    for g in nginx njs haproxy nyro nyro2; do
        [[ -n ${GROUP_PID[$g]:-} ]] && stop_pid "${GROUP_PID[$g]}"
        unset "GROUP_PID[$g]"
    done
}

# --- targets ---------------------------------------------------------------
ALL_TARGETS=(upstream nginx haproxy haproxy-jwt nginx-njs nyro-none nyro-jwt nyro-es256 nyro-rl nyro-rl-redis)
declare -A GROUP=([upstream]=up [nginx]=nginx [haproxy]=haproxy [haproxy-jwt]=haproxy
    [nginx-njs]=njs [nyro-none]=nyro [nyro-jwt]=nyro [nyro-es256]=nyro [nyro-rl]=nyro
    [nyro-rl-redis]=nyro2)
declare -A PATHS=([upstream]=/open/items [nginx]=/open/items [haproxy]=/open/items
    [haproxy-jwt]=/jwt/items [nginx-njs]=/jwt/items [nyro-none]=/open/items
    [nyro-jwt]=/jwt/items [nyro-es256]=/jwt/items [nyro-rl]=/rl/items [nyro-rl-redis]=/rl/items)
PORT[upstream]=$UP_PORT
declare -A HDR
enabled() { # targets... -> those not skipped
    local t out=()
    for t in "$@"; do has "$t" && out+=("$t"); done
    echo "${out[@]}"
}
url() { echo "http://127.0.0.1:${PORT[$1]}${PATHS[$1]}"; }
h2url() { echo "http://127.0.0.1:${H2PORT[$1]}${PATHS[$1]}"; }

mint() { # claims-json [extra args...]
    local claims=$1
    shift
    "$BIN" token mint --config "$DIR/gateway.toml" --ttl 1h --claims "$claims" "$@" \
        || die "token mint failed"
}

# Every target answers 200, and every JWT target really does the job: it
# refuses a missing, forged, expired or wrong-audience token (401) and one
# without company_id (403). Run after each start.
sanity() {
    local claims='{"sub":"u1","email":"u1@example.com","app_metadata":{"company_id":"c1"}}'
    local now good
    now=$(date +%s)
    good=$(mint "$claims")
    HDR[haproxy-jwt]="Authorization: Bearer $good"
    HDR[nginx-njs]=${HDR[haproxy-jwt]}
    HDR[nyro-jwt]=${HDR[haproxy-jwt]}
    HDR[nyro-rl]=${HDR[haproxy-jwt]}
    HDR[nyro-rl-redis]=${HDR[haproxy-jwt]}
    if has nyro-es256; then
        HDR[nyro-es256]="Authorization: Bearer $(mint "$claims" --key "$ES_KEY" --kid bench-es256)"
    fi
    declare -A bad
    bad[none]=
    bad[aud]=$(mint '{"sub":"u1","email":"u1@example.com","aud":"other","app_metadata":{"company_id":"c1"}}')
    bad[expired]=$(mint "{\"sub\":\"u1\",\"iat\":$((now - 7200)),\"exp\":$((now - 3600)),\"app_metadata\":{\"company_id\":\"c1\"}}")
    bad[nocompany]=$(mint '{"sub":"u1","email":"u1@example.com"}')
    bad[forged]=${bad[aud]%.*}.${good##*.} # another payload under good's signature
    local t st
    # The JWKS is fetched in the background: /ready says when it is held.
    for _ in $(seq 100); do
        [[ $(http_status "${PORT[nyro-jwt]}" /ready) == 200 ]] && break
        sleep 0.05
    done
    for t in $(enabled "${ALL_TARGETS[@]}"); do
        st=$(http_status "${PORT[$t]}" "${PATHS[$t]}" "${HDR[$t]:-}")
        [[ $st == 200 ]] || die "$t answered '$st', want 200"
    done
    local c want
    for t in $(enabled haproxy-jwt nginx-njs nyro-jwt); do
        for c in none:401 forged:401 expired:401 aud:401 nocompany:403; do
            want=${c#*:}
            c=${c%:*}
            st=$(http_status "${PORT[$t]}" "${PATHS[$t]}" "${bad[$c]:+Authorization: Bearer ${bad[$c]}}")
            [[ $st == "$want" ]] || die "$t: a $c token answered '$st', want $want: it does not do the JWT job"
        done
    done
}

# --- load ------------------------------------------------------------------
declare -A RPS P50 P99 ERR CPU RSS # "scenario:target" -> values over rounds
ms() { # wrk latency ("812.00us", "1.20ms", "2.00s") -> ms
    awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
        printf "%.2f", v }'
}
# One measured wrk run; records req/s, p50, p99, errors (non-2xx + socket
# errors), CPU µs per request of the target's processes, RSS after.
measure_wrk() { # scenario target duration conns [lua-script]
    local sc=$1 t=$2 g=${GROUP[$2]} out before after n rps p50 p99 bad
    local args=(-t1 -c"$4" -d"$3" --latency --timeout 5s)
    [[ -n ${HDR[$t]:-} ]] && args+=(-H "${HDR[$t]}")
    [[ -n ${5:-} ]] && args+=(-s "$5")
    before=$(group_ticks "$g")
    out=$(wrk "${args[@]}" "$(url "$t")" 2>&1) || die "wrk failed on $t: $out"
    after=$(group_ticks "$g")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ {s += $NF}
        /Socket errors:/ { gsub(/,/, ""); s += $4 + $6 + $8 + $10 } END { print s + 0 }' <<<"$out")
    [[ -n $rps && -n $n && -n $p50 && -n $p99 ]] || die "could not parse wrk output for $t:"$'\n'"$out"
    record "$sc" "$t" "$rps" "$(ms "$p50")" "$(ms "$p99")" "$bad" "$((after - before))" "$n"
}
record() { # scenario target rps p50 p99 errors ticks requests
    local k=$1:$2
    RPS[$k]+="$3 "
    P50[$k]+="$4 "
    P99[$k]+="$5 "
    ERR[$k]=$((${ERR[$k]:-0} + $6))
    CPU[$k]+="$(awk -v t="$7" -v n="$8" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (n > 0) ? t * 1e6 / hz / n : 0 }') "
    RSS[$k]=$(group_rss_kib "${GROUP[$2]}")
}
# One measured h2load run (h2c, prior knowledge). h2load prints no
# percentiles, so they come from its per-request log.
measure_h2() { # scenario target duration|warmup
    local sc=$1 t=$2 g=${GROUP[$2]} out before after n rps bad lat
    local args=(-c"$H2_CONNS" -m"$H2_STREAMS" -D"$3" --log-file="$DIR/h2.log")
    [[ -n ${HDR[$t]:-} ]] && args+=(-H "${HDR[$t]}")
    before=$(group_ticks "$g")
    out=$(h2load "${args[@]}" "$(h2url "$t")" 2>&1) || die "h2load failed on $t: $out"
    after=$(group_ticks "$g")
    [[ $sc == warmup ]] && return 0
    rps=$(awk '/^finished in/ {gsub(/,/, ""); print $4}' <<<"$out")
    n=$(awk '/^requests:/ {print $6}' <<<"$out")
    # Non-2xx answers and failed streams may be the same requests: count the larger.
    bad=$(awk '/^requests:/ {f = $10; e = $12 + $14} /^status codes:/ {s = $7 + $9}
        END { print ((f > s) ? f : s) + e }' <<<"$out")
    lat=$(awk '{print $3}' "$DIR/h2.log" | sort -n | awk '{a[NR] = $1} END {
        if (NR == 0) { print "0 0"; exit }
        i50 = int(NR * 0.50); if (i50 < 1) i50 = 1; i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
        printf "%.2f %.2f", a[i50] / 1000, a[i99] / 1000 }')
    [[ -n $rps && -n $n ]] || die "could not parse h2load output for $t:"$'\n'"$out"
    record "$sc" "$t" "$rps" "${lat% *}" "${lat#* }" "$bad" "$((after - before))" "$n"
}

median() { tr ' ' '\n' | awk NF | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# Medians of a scenario's rounds, as M_RPS[t] etc.
declare -A M_RPS M_P50 M_P99 M_CPU
medians() { # scenario targets...
    local sc=$1 t k
    shift
    for t in "$@"; do
        k=$sc:$t
        M_RPS[$k]=$(median <<<"${RPS[$k]}")
        M_P50[$k]=$(median <<<"${P50[$k]}")
        M_P99[$k]=$(median <<<"${P99[$k]}")
        M_CPU[$k]=$(median <<<"${CPU[$k]}")
    done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

# Interleaved rounds: warm every target, then ROUNDS x (each target once).
# A "%t" in the Lua script's path stands for the target.
run_scenario() { # scenario kind(wrk|h2) conns lua targets...
    local sc=$1 kind=$2 conns=$3 lua=$4 t r line
    shift 4
    for t in "$@"; do
        if [[ $kind == h2 ]]; then measure_h2 warmup "$t" "$WARMUP"; else measure_wrk warmup "$t" "$WARMUP" "$conns" "${lua//%t/$t}"; fi
    done
    for r in $(seq "$ROUNDS"); do
        line="$sc round $r:"
        for t in "$@"; do
            if [[ $kind == h2 ]]; then measure_h2 "$sc" "$t" "$DURATION"; else measure_wrk "$sc" "$t" "$DURATION" "$conns" "${lua//%t/$t}"; fi
            line+=" $t=$(awk '{print int($NF)}' <<<"${RPS[$sc:$t]}")"
        done
        echo "bench: $line"
    done
    medians "$sc" "$@"
}

table() { # scenario title targets...
    local sc=$1 title=$2 t k base
    shift 2
    echo
    echo "$title"
    printf '%-11s %9s %8s %8s %7s %11s %8s %9s\n' target "req/s" "p50 ms" "p99 ms" errors "CPU µs/req" "RSS MiB" "vs nginx"
    printf '%-11s %9s %8s %8s %7s %10s %8s %9s\n' ----------- --------- -------- -------- ------- ---------- -------- ---------
    base=${M_RPS[$sc:nginx]:-0}
    for t in "$@"; do
        k=$sc:$t
        printf '%-11s %9.0f %8.2f %8.2f %7d %10.1f %8s %8sx\n' "$t" "${M_RPS[$k]}" "${M_P50[$k]}" "${M_P99[$k]}" \
            "${ERR[$k]}" "${M_CPU[$k]}" "$(mib "${RSS[$k]}")" "$(ratio "${M_RPS[$k]}" "$base")"
    done
}

fail=0
RESULTS=""
gate() { # description ok
    local line
    if [[ $2 == 1 ]]; then line="PASS  gate    $1"; else line="FAIL  gate    $1"; fail=1; fi
    RESULTS+="$line"$'\n'
}
target_line() { # description ok (informational: the issue's targets)
    local line
    if [[ $2 == 1 ]]; then line="PASS  target  $1"; else line="FAIL  target  $1"; fi
    RESULTS+="$line"$'\n'
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? 1 : 0 }'; }
no_errors() { # scenario targets...
    local sc=$1 t bad=""
    shift
    for t in "$@"; do ((${ERR[$sc:$t]:-0} == 0)) || bad+=" $t=${ERR[$sc:$t]}"; done
    gate "$sc: no errors (non-2xx, socket errors)${bad:+:$bad}" "$([[ -z $bad ]] && echo 1 || echo 0)"
}

# --- run -------------------------------------------------------------------
start_proxies 1 default
sanity
IDLE_KIB=$(group_rss_kib nyro)
NYRO_THREADS=$(nproc)
echo "bench: $(nproc) cores; $(nginx -v 2>&1 | sed 's/.*: //'); $(has haproxy && haproxy -v | awk 'NR == 1 {print "HAProxy " $3}')"
echo "bench: pids for profiling (perf record -e cpu-clock -g -p PID): $(for g in nginx njs haproxy nyro; do [[ -n ${GROUP_PID[$g]:-} ]] && printf '%s=%s ' "$g" "${GROUP_PID[$g]}"; done)"
echo "bench: nyro-gw idle RSS $(mib "$IDLE_KIB") MiB"

MAIN=($(enabled "${ALL_TARGETS[@]}"))
if runs main; then
    echo "bench: main: wrk -t1 -c$CONNS -d$DURATION keep-alive x$ROUNDS interleaved rounds, warm-up $WARMUP"
    run_scenario main wrk "$CONNS" "" "${MAIN[@]}"
    MAIN_HWM=$(group_hwm_kib nyro)
    table main "main: wrk -t1 -c$CONNS keep-alive, medians of $ROUNDS rounds x $DURATION; nginx 1 worker, HAProxy nbthread 1, nyro-gw default workers ($NYRO_THREADS = cores)" "${MAIN[@]}"

    # Gates and the issue's targets, from main.
    no_errors main "${MAIN[@]}"
    N_RPS=${M_RPS[main:nginx]} J_RPS=${M_RPS[main:nyro-jwt]} O_RPS=${M_RPS[main:nyro-none]}
    N_CPU=${M_CPU[main:nginx]} J_CPU=${M_CPU[main:nyro-jwt]} O_CPU=${M_CPU[main:nyro-none]}
    r=$(ratio "$O_RPS" "$N_RPS"); gate "nyro-none/nginx req/s = $r >= BENCH_MIN_RATIO=$MIN_RATIO" "$(ge "$r" "$MIN_RATIO")"
    r=$(ratio "$J_RPS" "$N_RPS"); gate "nyro-jwt/nginx req/s = $r >= BENCH_MIN_JWT_RATIO=$MIN_JWT_RATIO" "$(ge "$r" "$MIN_JWT_RATIO")"
    r=$(ratio "$J_CPU" "$N_CPU"); gate "nyro-jwt/nginx CPU per request = $r <= BENCH_MAX_CPU_RATIO=$MAX_CPU_RATIO" "$(le "$r" "$MAX_CPU_RATIO")"
    gate "nyro-gw peak RSS after main = $(mib "$MAIN_HWM") MiB < BENCH_MAX_RSS_MIB=$MAX_RSS_MIB" "$(awk -v k="$MAIN_HWM" -v m="$MAX_RSS_MIB" 'BEGIN { print (k > 0 && k < m * 1024) ? 1 : 0 }')"
    gate "nyro-gw idle RSS = $(mib "$IDLE_KIB") MiB <= BENCH_MAX_IDLE_RSS_MIB=$MAX_IDLE_RSS_MIB" "$(le "$IDLE_KIB" $((MAX_IDLE_RSS_MIB * 1024)))"
    r=$(ratio "$J_RPS" "$N_RPS"); target_line "HS256 + 3 headers: nyro-jwt/nginx req/s = $r >= 0.9" "$(ge "$r" 0.9)"
    if has haproxy-jwt; then
        r=$(ratio "$J_RPS" "${M_RPS[main:haproxy-jwt]}"); target_line "HS256 + 3 headers: nyro-jwt/haproxy-jwt req/s = $r >= 1.3" "$(ge "$r" 1.3)"
    fi
    r=$(ratio "$J_CPU" "$N_CPU"); target_line "HS256 + 3 headers: nyro-jwt/nginx CPU per request = $r <= 1.2" "$(le "$r" 1.2)"
    r=$(ratio "${M_P99[main:nyro-jwt]}" "${M_P99[main:nginx]}"); target_line "HS256 + 3 headers: nyro-jwt/nginx p99 = $r <= 1.15" "$(le "$r" 1.15)"
    r=$(ratio "$O_CPU" "$N_CPU"); target_line "auth = none: nyro-none/nginx CPU per request = $r <= 1.1" "$(le "$r" 1.1)"
    target_line "idle: nyro-gw RSS = $(mib "$IDLE_KIB") MiB <= 15" "$(le "$IDLE_KIB" $((15 * 1024)))"
    if has nyro-es256; then
        r=$(ratio "${M_RPS[main:nyro-es256]}" "$J_RPS")
        gate "nyro-es256/nyro-jwt req/s = $r >= BENCH_MIN_ES256_RATIO=$MIN_ES256_RATIO" "$(ge "$r" "$MIN_ES256_RATIO")"
        target_line "ES256 via JWKS, warm cache: nyro-es256/nyro-jwt req/s = $r >= 0.9" "$(ge "$r" 0.9)"
    fi
    # Rate limits: reported beside nyro-jwt (the same job without a limit),
    # not gated.
    for t in $(enabled nyro-rl nyro-rl-redis); do
        echo "info    $t/nyro-jwt req/s = $(ratio "${M_RPS[main:$t]}" "$J_RPS"), CPU per request = $(ratio "${M_CPU[main:$t]}" "$J_CPU")"
    done
fi

if runs conn1k; then
    # conn1k: 1,000 keep-alive connections. nyro-jwt goes last in each round
    # so the settle watch starts as its load stops.
    BIG=($(enabled nginx haproxy nyro-jwt))
    echo "bench: conn1k: wrk -t1 -c$BIG_CONNS -d$DURATION keep-alive x$ROUNDS interleaved rounds; RSS sampled during the load"
    LOAD_KIB=0
    for t in "${BIG[@]}"; do measure_wrk warmup "$t" "$WARMUP" "$BIG_CONNS"; done
    for r in $(seq "$ROUNDS"); do
        line="conn1k round $r:"
        for t in "${BIG[@]}"; do
            if [[ $t == nyro-jwt ]]; then
                # Sample nyro-gw's RSS while the load runs; the sampler also
                # stops when the run ends ($DIR removed, or this shell gone).
                (
                    peak=0
                    while [[ -d $DIR && ! -e $DIR/load.done ]] && kill -0 $$ 2>/dev/null; do
                        k=$(group_rss_kib nyro)
                        ((k > peak)) && peak=$k && echo "$peak" >"$DIR/load.peak"
                        sleep 0.2
                    done
                ) &
                sampler=$!
                PIDS+=("$sampler")
                measure_wrk conn1k "$t" "$DURATION" "$BIG_CONNS"
                touch "$DIR/load.done"
                wait "$sampler" || true
                rm -f "$DIR/load.done"
                k=$(cat "$DIR/load.peak" 2>/dev/null || echo 0)
                ((k > LOAD_KIB)) && LOAD_KIB=$k
            else
                measure_wrk conn1k "$t" "$DURATION" "$BIG_CONNS"
            fi
            line+=" $t=$(awk '{print int($NF)}' <<<"${RPS[conn1k:$t]}")"
        done
        echo "bench: $line"
    done
    medians conn1k "${BIG[@]}"
    # Back under 32 MiB within 30 s?
    SETTLE_S=-1
    start=$(date +%s%N)
    for i in $(seq 0 120); do
        k=$(group_rss_kib nyro)
        if ((k <= 32 * 1024)); then
            SETTLE_S=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
            break
        fi
        ((i == 120)) || sleep 0.25
    done
    SETTLED_KIB=$(group_rss_kib nyro)
    if [[ $SETTLE_S == -1 ]]; then SETTLE_TXT="not within 30 s"; else SETTLE_TXT="after $SETTLE_S s"; fi
    table conn1k "conn1k: wrk -t1 -c$BIG_CONNS keep-alive, medians of $ROUNDS rounds x $DURATION (RSS: after the last round)" "${BIG[@]}"
    echo "nyro-gw RSS under $BIG_CONNS connections: peak $(mib "$LOAD_KIB") MiB; after the load: $(mib "$SETTLED_KIB") MiB, under 32 MiB $SETTLE_TXT"
    no_errors conn1k "${BIG[@]}"
    gate "conn1k: nyro-gw RSS under load = $(mib "$LOAD_KIB") MiB <= BENCH_MAX_LOAD_RSS_MIB=$MAX_LOAD_RSS_MIB" "$(le "$LOAD_KIB" $((MAX_LOAD_RSS_MIB * 1024)))"
    gate "conn1k: nyro-gw RSS 30 s after = $(mib "$SETTLED_KIB") MiB <= BENCH_MAX_SETTLED_RSS_MIB=$MAX_SETTLED_RSS_MIB" "$(le "$SETTLED_KIB" $((MAX_SETTLED_RSS_MIB * 1024)))"
    target_line "1,000 connections: nyro-gw RSS under load = $(mib "$LOAD_KIB") MiB <= 64" "$(le "$LOAD_KIB" $((64 * 1024)))"
    target_line "1,000 connections: nyro-gw RSS back under 32 MiB within 30 s ($SETTLE_TXT)" "$(awk -v s="$SETTLE_S" 'BEGIN { print (s >= 0 && s <= 30) ? 1 : 0 }')"
fi

# upload: 1 MiB POST bodies, streamed by every proxy.
if runs upload; then
    UP_TARGETS=($(enabled upstream nginx haproxy haproxy-jwt nginx-njs nyro-none nyro-jwt))
    printf '%s\n' 'wrk.method = "POST"' 'wrk.body = string.rep("x", 1048576)' \
        'wrk.headers["Content-Type"] = "application/octet-stream"' >"$DIR/upload.lua"
    echo "bench: upload: wrk -t1 -c$UPLOAD_CONNS -d$DURATION, 1 MiB POST bodies x$ROUNDS interleaved rounds"
    for t in "${UP_TARGETS[@]}"; do PATHS[$t]=${PATHS[$t]%/items}/upload; done
    run_scenario upload wrk "$UPLOAD_CONNS" "$DIR/upload.lua" "${UP_TARGETS[@]}"
    for t in "${UP_TARGETS[@]}"; do PATHS[$t]=${PATHS[$t]%/upload}/items; done
    table upload "upload: 1 MiB POST, wrk -t1 -c$UPLOAD_CONNS, medians of $ROUNDS rounds x $DURATION (nginx: proxy_request_buffering off)" "${UP_TARGETS[@]}"
    no_errors upload "${UP_TARGETS[@]}"
fi

# h2: h2load over h2c (prior knowledge); HTTP/1.1 to the upstream.
if runs h2 && ((H2LOAD)); then
    H2_TARGETS=($(enabled nginx haproxy haproxy-jwt nginx-njs nyro-none nyro-jwt nyro-es256))
    echo "bench: h2: h2load -c$H2_CONNS -m$H2_STREAMS -D$DURATION (h2c prior knowledge) x$ROUNDS interleaved rounds"
    run_scenario h2 h2 0 "" "${H2_TARGETS[@]}"
    table h2 "h2: h2load -c$H2_CONNS -m$H2_STREAMS h2c, medians of $ROUNDS rounds x $DURATION; HTTP/1.1 to the upstream" "${H2_TARGETS[@]}"
    no_errors h2 "${H2_TARGETS[@]}"
fi

# cold: a fresh HS256 token on every request. Each target walks its own
# list of COLD_TOKENS distinct tokens (valid, main's claims plus a `jti`
# numbering them, so the upstream's check still holds), its place kept
# across wrk runs, so no target sees a token again before COLD_TOKENS of
# its requests have passed: more than nyro-gw's token cache holds (32 MiB,
# about 50,000 such tokens), so every nyro-gw request verifies its
# signature and pays the insert and the eviction (measured: 518,106
# lookups, 0 hits). HAProxy and njs verify every request anyway.
if runs cold; then
    COLD_TARGETS=($(enabled nginx haproxy-jwt nginx-njs nyro-jwt))
    python3 - "$SECRET" "$COLD_TOKENS" >"$DIR/cold.tokens" <<'PY' || die "could not make the cold tokens (python3)"
import base64, hashlib, hmac, json, sys, time
secret, n, now = sys.argv[1].encode(), int(sys.argv[2]), int(time.time())
def b64(d): return base64.urlsafe_b64encode(d).rstrip(b"=")
def js(o): return b64(json.dumps(o, separators=(",", ":")).encode())
head = js({"alg": "HS256", "typ": "JWT"})
out = sys.stdout
for i in range(n):
    signed = head + b"." + js({"sub": "u1", "email": "u1@example.com", "aud": "authenticated", "jti": f"cold-{i}",
                               "iat": now, "exp": now + 7200, "app_metadata": {"company_id": "c1"}})
    out.write((signed + b"." + b64(hmac.new(secret, signed, hashlib.sha256).digest())).decode() + "\n")
PY
    for t in "${COLD_TARGETS[@]}"; do
        echo 0 >"$DIR/cold-$t.at"
        cat >"$DIR/cold-$t.lua" <<LUA
-- One token per request, from where the last run of this target stopped.
local tokens, at = {}, 0
for line in io.lines("$DIR/cold.tokens") do tokens[#tokens + 1] = "Bearer " .. line end
for line in io.lines("$DIR/cold-$t.at") do at = tonumber(line) end
request = function()
    at = at % #tokens + 1
    return wrk.format(nil, nil, { Authorization = tokens[at] })
end
-- Runs in wrk's main state, whose 'at' is where this run started: moves
-- it past every request sent (the in-flight ones included).
done = function(summary)
    local f = io.open("$DIR/cold-$t.at", "w")
    f:write(tostring((at + summary.requests + $CONNS) % #tokens))
    f:close()
end
LUA
    done
    first=$(head -1 "$DIR/cold.tokens")
    for t in $(enabled haproxy-jwt nginx-njs nyro-jwt); do
        st=$(http_status "${PORT[$t]}" "${PATHS[$t]}" "Authorization: Bearer $first")
        [[ $st == 200 ]] || die "$t answered '$st' to a cold token, want 200"
    done
    echo "bench: cold: wrk -t1 -c$CONNS -d$DURATION, a fresh token per request ($COLD_TOKENS per target) x$ROUNDS interleaved rounds"
    run_scenario cold wrk "$CONNS" "$DIR/cold-%t.lua" "${COLD_TARGETS[@]}"
    table cold "cold: as main, a fresh HS256 token per request (each target cycles $COLD_TOKENS: a token comes back long after nyro-gw evicted it), medians of $ROUNDS rounds x $DURATION" "${COLD_TARGETS[@]}"
    no_errors cold "${COLD_TARGETS[@]}"
    echo "bench: cold: nyro-gw RSS with its token cache full: $(mib "$(group_rss_kib nyro)") MiB"
fi

# equal: every proxy restarted at the same number of workers.
if runs equal; then
    stop_proxies
    start_proxies "$EQUAL_WORKERS" "$EQUAL_WORKERS"
    sanity
    echo "bench: equal: every proxy at $EQUAL_WORKERS workers"
    run_scenario equal wrk "$CONNS" "" "${MAIN[@]}"
    table equal "equal: as main, every proxy at $EQUAL_WORKERS workers (nginx worker_processes, HAProxy nbthread, nyro-gw [server] workers)" "${MAIN[@]}"
    no_errors equal "${MAIN[@]}"
    r=$(ratio "${M_RPS[equal:nyro-jwt]}" "${M_RPS[equal:nginx]}"); target_line "equal workers: nyro-jwt/nginx req/s = $r >= 0.9" "$(ge "$r" 0.9)"
fi

echo
echo "CPU µs/req: user + system time of the target's processes (nginx: master + workers) over the requests served; RSS: summed over them."
echo "Targets sharing a process (haproxy/haproxy-jwt; the nyro-* routes) show the same RSS. Gates fail the run; targets are the issue's goals, reported only."
echo
printf '%s' "$RESULTS"
exit "$fail"
