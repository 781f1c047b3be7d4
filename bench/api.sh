#!/usr/bin/env bash
# Throughput of the routes Treefort and the app owner's backend call most (the plan, a promo
# code, the entitlement check, and a checkout session: one insert each), next to a no-op route of the same server (GET /healthz:
# routing, middleware, JSON, no database) and to a bare actix-web server's no-op route (the floor:
# examples/bare_server.rs, no middleware), measured in the same run on a release build with wrk
# (Debian's `wrk`). The service logs at `info`, as in production: one JSON line per request, to a
# file. Its memory (resident set) is printed idle and at its peak under the load.
#   bench/api.sh                      # SQLite in a temporary folder
#   DATABASE_URL=postgres://…/bench bench/api.sh   # a database of its own: its tables are used
# DURATION (default 10s), CONNECTIONS (64), ROUNDS (3; the median is reported), BIN (the binary;
# default: a release build of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
rounds=${ROUNDS:-3}

# BIN: another build to measure (e.g. an earlier commit's, for a ratio in the same run).
if [ -z "${BIN:-}" ]; then cargo build --release --locked -q; fi
# The floor: a bare actix-web server (examples/bare_server.rs), measured in the same run.
cargo build --release --locked -q --example bare_server
bare_bin=target/release/examples/bare_server
bin=${BIN:-target/release/treefort-webpay}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
port=$(free_port)
treefort_port=$(free_port)
cleanup() {
    kill "${service_pid:-}" "${treefort_pid:-}" "${bare_pid:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

python3 .ci/fake_treefort.py "$treefort_port" &
treefort_pid=$!
export DATABASE_URL="${DATABASE_URL:-sqlite://$work/bench.db}"
"$bin" plans upsert --id 1 --name Monthly --interval month --currency USD --amount 999 >/dev/null
"$bin" promo create --code BENCH10 --percent-off 10 >/dev/null
# A campaign's code for new subscribers: the harder case for a checkout session (the user's
# history is a condition of its insert).
"$bin" promo create --code WELCOME10 --percent-off 10 --first-time-only >/dev/null
# One /v1 key per round too: /v1 keys share the provider keys' rate limit.
for round in $(seq 1 "$rounds"); do
    created=$("$bin" apikeys create --name "bench $round" --scope read)
    printf '%s\n' "${created%%$'\n'*}" >"$work/v1-key-$round"
done

# One provider key per route and round: each key's rate limit (at most 1 000 000 a minute) holds
# one round of one route.
provider_keys=bench-setup
for route in plan promo checkout code; do
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
bare_port=$(free_port)
"$bare_bin" "127.0.0.1:$bare_port" >/dev/null &
bare_pid=$!
bare="http://127.0.0.1:$bare_port"
for _ in $(seq 1 100); do curl -fs "$bare/healthz" >/dev/null && break; sleep 0.1; done

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
    sed -e 's|"subscriptionPlanId":1,|"subscriptionPlanId":1,"promoCode":"WELCOME10",|' \
        -e 's/bench-checkout-/bench-code-/' "$work/checkout-$round.lua" >"$work/code-$round.lua"
done

# wrk pinned to one core, the service free to use the other.
round() {  # round NAME URL ROUND [wrk args…]: prints "req/s p50 p99 max" of one round
    local name=$1 url=$2 round=$3; shift 3
    out=$(taskset -c 1 wrk -t1 -c"$connections" -d"$duration" --latency "${@//ROUND/$round}" "$url")
    if echo "$out" | grep -q "Non-2xx"; then echo "$name: errors: $out" >&2; exit 1; fi
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    max=$(echo "$out" | awk '$1 == "Latency" {print $4; exit}')
    echo "$rps $p50 $p99 $max"
}
# The median round's req/s, p50 and p99; the slowest request of all rounds (rounds on stdin).
median() {
    sort -n | python3 -c '
import sys
rows = [line.split() for line in sys.stdin]
ms = lambda t: float(t.rstrip("mus")) * {"us": 0.001, "ms": 1, "s": 1000}[t.lstrip("0123456789.")]
print(*rows[(len(rows) - 1) // 2][:3], "%.2fms" % max(ms(r[3]) for r in rows))'
}
run() {  # run NAME URL [wrk args…]: ROUNDS rounds, their median (see above)
    local name=$1 url=$2; shift 2
    for r in $(seq 1 "$rounds"); do round "$name" "$url" "$r" "$@" || exit 1; done | median
}

# The database's own rate of single-row INSERTs, one transaction each, from 8 clients (the
# service's pool size), measured in the same run, of two rows: a minimal one (an id, a token and
# a time, in a table of its own without another index), and the row a checkout session writes
# (all its columns, into a copy of `checkout_sessions` with its indexes: the unique token hash,
# the partial one per user; on SQLite its foreign keys checked too). The second is the insert
# the endpoint cannot do without: what a checkout session can approach.
# insert_baseline minimal|session: prints inserts/s
insert_baseline() {
    local shape=$1
    local values="lower(md5(random()::text) || md5(random()::text)), 'u2', 'u2@example.com', NULL, 'en', 1, NULL, 'https://app.example.com/ok', 'https://app.example.com/no', 'open', now(), now() + interval '1 day'"
    local columns="token_hash, user_id, user_email, user_full_name, locale, plan_id, promo_code_id, success_url, cancel_url, status, created_at, expires_at"
    if [[ $DATABASE_URL == postgres* ]]; then
        command -v pgbench >/dev/null || PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
        if [[ $shape == minimal ]]; then
            psql -q "$DATABASE_URL" -c 'DROP TABLE IF EXISTS bench_inserts' \
                -c 'CREATE TABLE bench_inserts (id BIGSERIAL PRIMARY KEY, token TEXT NOT NULL, at TIMESTAMP NOT NULL)'
            echo "INSERT INTO bench_inserts (token, at) VALUES (md5(random()::text), now());" >"$work/insert.sql"
        else
            # LIKE copies the columns, defaults, identity (a sequence of its own), checks and indexes.
            psql -q "$DATABASE_URL" -c 'DROP TABLE IF EXISTS bench_inserts' \
                -c 'CREATE TABLE bench_inserts (LIKE checkout_sessions INCLUDING ALL)'
            echo "INSERT INTO bench_inserts ($columns) VALUES ($values);" >"$work/insert.sql"
        fi
        pgbench -n -c 8 -j 2 -T "${duration%s}" -f "$work/insert.sql" "$DATABASE_URL" 2>/dev/null |
            awk '/^tps/ {print int($3)}'
        psql -q "$DATABASE_URL" -c 'DROP TABLE bench_inserts'
    else
        python3 - "${DATABASE_URL#sqlite://}" "${duration%s}" "$shape" "$columns" <<'PY'
import sqlite3, sys, threading, time
path, seconds, shape, columns = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
setup = sqlite3.connect(path)
setup.execute("DROP TABLE IF EXISTS bench_inserts")
if shape == "minimal":
    setup.execute("CREATE TABLE bench_inserts (id INTEGER PRIMARY KEY, token TEXT NOT NULL, at TEXT NOT NULL)")
    insert = "INSERT INTO bench_inserts (token, at) VALUES (hex(randomblob(16)), datetime('now'))"
else:
    # The service's own statements for the table and its indexes, renamed.
    for (sql,) in setup.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'checkout_sessions' AND sql IS NOT NULL").fetchall():
        setup.execute(sql.replace("checkout_sessions", "bench_inserts"))
    insert = (f"INSERT INTO bench_inserts ({columns}) VALUES (lower(hex(randomblob(32))), 'u2', 'u2@example.com', NULL, "
              "'en', 1, NULL, 'https://app.example.com/ok', 'https://app.example.com/no', 'open', "
              "strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 day'))")
setup.commit()
counts = [0] * 8
def client(i):
    c = sqlite3.connect(path, timeout=5, isolation_level=None)
    c.execute("PRAGMA synchronous=NORMAL"); c.execute("PRAGMA busy_timeout=5000"); c.execute("PRAGMA foreign_keys=ON")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c.execute("BEGIN IMMEDIATE"); c.execute(insert); c.execute("COMMIT")
        counts[i] += 1
threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(int(sum(counts) / seconds))
setup.execute("DROP TABLE bench_inserts"); setup.commit()
PY
    fi
}

rss() { awk -v k="$1:" '$1 == k {print int($2 / 1024) " MB"}' "/proc/$service_pid/status"; }
idle_rss=$(rss VmRSS)
floor=$(run bare "$bare/healthz")
kill "$bare_pid" 2>/dev/null || true
noop=$(run noop "$base/healthz")
plan=$(run plan "$base/treefort/subscription-plan" -s "$work/plan-ROUND.lua")
promo=$(run promo "$base/treefort/validate-promo-code" -s "$work/promo-ROUND.lua")
for round in $(seq 1 "$rounds"); do
    printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$(cat "$work/v1-key-$round")" >"$work/entitlement-$round.lua"
done
entitlement=$(run entitlement "$base/v1/users/u1/entitlement" -s "$work/entitlement-ROUND.lua")
# Checkout sessions without and with a promo code take turns, round by round: each adds rows
# to the same tables, so neither is measured on a smaller table than the other.
for r in $(seq 1 "$rounds"); do
    round checkout "$base/treefort/checkout-session" "$r" -s "$work/checkout-ROUND.lua" >>"$work/checkout.rounds"
    round code "$base/treefort/checkout-session" "$r" -s "$work/code-ROUND.lua" >>"$work/code.rounds"
done
checkout=$(median <"$work/checkout.rounds")
code=$(median <"$work/code.rounds")
noop_rps=${noop%% *}
floor_rps=${floor%% *}
printf '%-34s %12s %10s %10s %10s %10s %10s\n' route "req/s" p50 p99 max "/ no-op" "/ bare"
for row in "bare actix-web server (the floor)|$floor" "GET /healthz (no-op)|$noop" "POST /treefort/subscription-plan|$plan" \
    "POST /treefort/validate-promo-code|$promo" "GET /v1/users/{id}/entitlement|$entitlement" \
    "POST /treefort/checkout-session|$checkout" "  … with a promo code|$code"; do
    name=${row%%|*}; read -r rps p50 p99 max <<<"${row#*|}"
    printf '%-34s %12s %10s %10s %10s %10.2f %10.2f\n' "$name" "$rps" "$p50" "$p99" "$max" \
        "$(python3 -c "print($rps / $noop_rps)")" "$(python3 -c "print($rps / $floor_rps)")"
done
checkout_rps=${checkout%% *}
ratio() { python3 -c "print('%.2f' % ($1 / max($2, 1)))"; }
echo "checkout sessions with a promo code / without: $(ratio "${code%% *}" "$checkout_rps")"
echo "the database's own single-row INSERTs, one transaction each, 8 clients:"
for shape in minimal session; do
    inserts=$(insert_baseline "$shape")
    case $shape in
        minimal) what="a minimal row (id, token, time; no other index)" ;;
        session) what="a checkout session's row (its table's indexes)" ;;
    esac
    printf '  %-50s %8s/s; checkout sessions / it: %s\n' "$what" "$inserts" "$(ratio "$checkout_rps" "$inserts")"
done
echo "memory: $idle_rss idle, $(rss VmHWM) at the peak under load"
echo "database: ${DATABASE_URL%%:*}, $connections connections, $rounds rounds of $duration (median), $(nproc) cores"
if grep -q '"level":"ERROR"' "$work/service.log"; then
    echo "the service logged errors under load:" >&2; grep '"level":"ERROR"' "$work/service.log" | head -5 >&2; exit 1
fi
