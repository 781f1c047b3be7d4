#!/usr/bin/env bash
# Throughput of the routes Treefort and the app owner's backend call most (the plan, a promo
# code, the entitlement check, and a checkout session: one insert each), next to a no-op route of the same server (GET /healthz:
# routing, middleware, JSON, no database), measured in the same run on a release build with wrk
# (Debian's `wrk`). The service logs at `info`, as in production: one JSON line per request, to a
# file. Its memory (resident set) is printed idle and at its peak under the load.
#   bench/api.sh                      # SQLite in a temporary folder
#   DATABASE_URL=postgres://…/bench bench/api.sh   # a database of its own: its tables are used
# DURATION (default 10s), CONNECTIONS (64), ROUNDS (3; the median is reported).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
rounds=${ROUNDS:-3}

cargo build --release --locked -q
bin=target/release/treefort-webpay
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
port=$(free_port)
treefort_port=$(free_port)
cleanup() {
    kill "${service_pid:-}" "${treefort_pid:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

python3 .ci/fake_treefort.py "$treefort_port" &
treefort_pid=$!
export DATABASE_URL="${DATABASE_URL:-sqlite://$work/bench.db}"
"$bin" plans upsert --id 1 --name Monthly --interval month --currency USD --amount 999 >/dev/null
"$bin" promo create --code BENCH10 --percent-off 10 >/dev/null
# One /v1 key per round too: /v1 keys share the provider keys' rate limit.
for round in $(seq 1 "$rounds"); do
    created=$("$bin" apikeys create --name "bench $round" --scope read)
    printf '%s\n' "${created%%$'\n'*}" >"$work/v1-key-$round"
done

# One provider key per route and round: each key's rate limit (at most 1 000 000 a minute) holds
# one round of one route.
provider_keys=bench-setup
for route in plan promo checkout; do
    provider_keys+=,$(seq -f "bench-$route-%g" 1 "$rounds" | paste -sd, -)
done
LISTEN_ADDR="127.0.0.1:$port" PROVIDER_API_KEYS="$provider_keys" \
TREEFORT_API_URL="http://127.0.0.1:$treefort_port/v1" \
TREEFORT_TOKEN_URL="http://127.0.0.1:$treefort_port/oauth2/token" \
TREEFORT_CLIENT_ID=client TREEFORT_CLIENT_SECRET=secret TREEFORT_API_VERSION=2024-10-01 \
RATE_LIMIT_TREEFORT_PER_MINUTE=1000000 RATE_LIMIT_PAGES_PER_MINUTE=1000000 \
LOG_FORMAT=json RUST_LOG=info \
    "$bin" serve 2>"$work/service.log" &
service_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done

# One subscriber, through the real checkout (sandbox card).
session=$(curl -fs "$base/treefort/checkout-session" -H 'Authorization: Bearer bench-setup' \
    -H 'Content-Type: application/json' \
    -d '{"user":{"id":"u1","email":"u1@example.com","createdAt":"2026-01-01"},"subscriptionPlanId":1,
         "locale":"en","successUrl":"https://app.example.com/ok","cancelUrl":"https://app.example.com/no"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["sessionUrl"])')
curl -fs -o /dev/null -X POST "$session" -H "Origin: $base" \
    --data 'card_number=4242424242424242&card_expiry=12/40&card_cvc=123'

for round in $(seq 1 "$rounds"); do
    cat >"$work/plan-$round.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer bench-plan-$round"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"subscriptionPlanId": 1}'
LUA
    sed -e 's/{"subscriptionPlanId": 1}/{"code": "bench10", "subscriptionPlanIds": [1], "userId": "u2"}/' \
        -e 's/bench-plan-/bench-promo-/' \
        "$work/plan-$round.lua" >"$work/promo-$round.lua"
    sed -e 's|{"subscriptionPlanId": 1}|{"user":{"id":"u2","email":"u2@example.com","createdAt":"2026-01-01"},"subscriptionPlanId":1,"locale":"en","successUrl":"https://app.example.com/ok","cancelUrl":"https://app.example.com/no"}|' \
        -e 's/bench-plan-/bench-checkout-/' "$work/plan-$round.lua" >"$work/checkout-$round.lua"
done

# wrk pinned to one core, the service free to use the other.
run() {  # run NAME URL [wrk args…]: prints "req/s p50 p99" medians over the rounds
    local name=$1 url=$2; shift 2
    local results=()
    for round in $(seq 1 "$rounds"); do
        out=$(taskset -c 1 wrk -t1 -c"$connections" -d"$duration" --latency "${@//ROUND/$round}" "$url")
        if echo "$out" | grep -q "Non-2xx"; then echo "$name: errors: $out" >&2; exit 1; fi
        rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
        p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
        results+=("$rps $p50 $p99")
    done
    printf '%s\n' "${results[@]}" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p"
}

# The database's own rate of single-row INSERTs, one transaction each, from 8 clients (the
# service's pool size), measured in the same run: what a checkout session (one insert) can approach.
insert_baseline() {
    if [[ $DATABASE_URL == postgres* ]]; then
        command -v pgbench >/dev/null || PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
        psql -q "$DATABASE_URL" -c 'CREATE TABLE IF NOT EXISTS bench_inserts (id BIGSERIAL PRIMARY KEY, token TEXT NOT NULL, at TIMESTAMP NOT NULL)'
        echo "INSERT INTO bench_inserts (token, at) VALUES (md5(random()::text), now());" >"$work/insert.sql"
        pgbench -n -c 8 -j 2 -T "${duration%s}" -f "$work/insert.sql" "$DATABASE_URL" 2>/dev/null |
            awk '/^tps/ {print int($3)}'
        psql -q "$DATABASE_URL" -c 'DROP TABLE bench_inserts'
    else
        python3 - "${DATABASE_URL#sqlite://}" "${duration%s}" <<'PY'
import sqlite3, sys, threading, time, os
path, seconds = sys.argv[1] + ".inserts", float(sys.argv[2])
setup = sqlite3.connect(path); setup.execute("PRAGMA journal_mode=WAL")
setup.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, token TEXT NOT NULL, at TEXT NOT NULL)"); setup.commit()
counts = [0] * 8
def client(i):
    c = sqlite3.connect(path, timeout=5, isolation_level=None)
    c.execute("PRAGMA synchronous=NORMAL"); c.execute("PRAGMA busy_timeout=5000")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c.execute("BEGIN IMMEDIATE"); c.execute("INSERT INTO t (token, at) VALUES (hex(randomblob(32)), datetime('now'))"); c.execute("COMMIT")
        counts[i] += 1
threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(int(sum(counts) / seconds))
for suffix in ("", "-wal", "-shm"):
    try: os.remove(path + suffix)
    except FileNotFoundError: pass
PY
    fi
}

rss() { awk -v k="$1:" '$1 == k {print int($2 / 1024) " MB"}' "/proc/$service_pid/status"; }
idle_rss=$(rss VmRSS)
noop=$(run noop "$base/healthz")
plan=$(run plan "$base/treefort/subscription-plan" -s "$work/plan-ROUND.lua")
promo=$(run promo "$base/treefort/validate-promo-code" -s "$work/promo-ROUND.lua")
for round in $(seq 1 "$rounds"); do
    printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$(cat "$work/v1-key-$round")" >"$work/entitlement-$round.lua"
done
entitlement=$(run entitlement "$base/v1/users/u1/entitlement" -s "$work/entitlement-ROUND.lua")
checkout=$(run checkout "$base/treefort/checkout-session" -s "$work/checkout-ROUND.lua")
noop_rps=${noop%% *}
printf '%-34s %12s %10s %10s %10s\n' route "req/s" p50 p99 "/ no-op"
for row in "GET /healthz (no-op)|$noop" "POST /treefort/subscription-plan|$plan" \
    "POST /treefort/validate-promo-code|$promo" "GET /v1/users/{id}/entitlement|$entitlement" \
    "POST /treefort/checkout-session|$checkout"; do
    name=${row%%|*}; read -r rps p50 p99 <<<"${row#*|}"
    printf '%-34s %12s %10s %10s %10.2f\n' "$name" "$rps" "$p50" "$p99" \
        "$(python3 -c "print($rps / $noop_rps)")"
done
inserts=$(insert_baseline)
checkout_rps=${checkout%% *}
printf 'checkout sessions: %s/s; the database'"'"'s own single-row INSERTs (8 clients): %s/s; ratio %.2f\n' \
    "$checkout_rps" "$inserts" "$(python3 -c "print($checkout_rps / max($inserts, 1))")"
echo "memory: $idle_rss idle, $(rss VmHWM) at the peak under load"
echo "database: ${DATABASE_URL%%:*}, $connections connections, $rounds rounds of $duration (median), $(nproc) cores"
if grep -q '"level":"ERROR"' "$work/service.log"; then
    echo "the service logged errors under load:" >&2; grep '"level":"ERROR"' "$work/service.log" | head -5 >&2; exit 1
fi
