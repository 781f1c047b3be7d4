#!/usr/bin/env bash
# Schemathesis (PyPI) against a release build of the service, with a fake Treefort on loopback:
# every check on every route in openapi.yaml (all but two with SCHEMATHESIS_DEFAULT_LIMITS=1), a
# fixed seed and a bounded number of examples, so the run is the same every time and short.
# 0 failures is the bar.
# Usage: .ci/schemathesis.sh [DATABASE_URL]   (default: a fresh SQLite file)
# Environment:
#   SCHEMATHESIS_SEED=N             the seed (default 20261123)
#   SCHEMATHESIS_MAX_EXAMPLES=N     examples per operation (default 25)
#   SCHEMATHESIS_DEFAULT_LIMITS=1   run the service with its default rate limits (none of the
#                                   RATE_LIMIT_* variables set), so that the 429 answers are
#                                   tested against openapi.yaml too, and skip the two checks that
#                                   need every keyless request answered 401 (see below); without
#                                   it (or with 0) the limits are raised out of the way
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
db_url="${1:-sqlite://$work/schemathesis.db}"
port=$(free_port)
treefort_port=$(free_port)
bin=target/release/treefort-webpay
seed="${SCHEMATHESIS_SEED:-20261123}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
case "${SCHEMATHESIS_DEFAULT_LIMITS:-0}" in
    1) default_limits=1 ;;
    0) default_limits="" ;;
    *) echo "SCHEMATHESIS_DEFAULT_LIMITS must be 1 or 0 (got ${SCHEMATHESIS_DEFAULT_LIMITS})" >&2; exit 2 ;;
esac

cleanup() {
    kill "${service_pid:-}" "${treefort_pid:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

python3 .ci/fake_treefort.py "$treefort_port" &
treefort_pid=$!

export DATABASE_URL="$db_url"
"$bin" plans upsert --id 1 --name Monthly --interval month --trial-days 7 --grace-days 3 \
    --currency USD --amount 999 >/dev/null
"$bin" plans upsert --id 2 --name Yearly --interval year --currency EUR --amount 9900 >/dev/null
"$bin" promo create --code SPRING25 --percent-off 25 >/dev/null
# The app owner's key for /v1 (the provider key is for /treefort/* only).
created=$("$bin" apikeys create --name schemathesis --scope write)
v1_key=${created%%$'\n'*}
config="$work/schemathesis.toml"
cp .ci/schemathesis.toml "$config"
cat >>"$config" <<TOML

[[operations]]
include-path-regex = "^/v1/"
headers = { Authorization = "Bearer $v1_key" }
TOML

# Limits raised unless SCHEMATHESIS_DEFAULT_LIMITS=1: schemathesis sends many requests, and its
# auth checks present missing and wrong keys on purpose, which would otherwise use up this
# address's budget of failed authentications (and then every /treefort and /v1 request is answered
# 429 for a while). With the default limits those 429 answers are what is tested; the variables
# are unset, so that none is inherited from the caller either.
unset RATE_LIMIT_TREEFORT_PER_MINUTE RATE_LIMIT_PAGES_PER_MINUTE RATE_LIMIT_FAILED_AUTH_PER_MINUTE
limits=()
if [ -z "$default_limits" ]; then
    limits=(RATE_LIMIT_TREEFORT_PER_MINUTE=1000000 RATE_LIMIT_PAGES_PER_MINUTE=1000000
        RATE_LIMIT_FAILED_AUTH_PER_MINUTE=1000000)
fi
# With the default limits, once this address has spent its budget of failed authentications (30
# a minute, used up within seconds by schemathesis's requests without a key or with a wrong one)
# the service answers 429 before it looks at any key, by design. missing_required_header expects
# 401 for a request without `Authorization` and ignored_auth 401 or 403 for its probes, so those
# two checks are left to the runs with the limits raised, which make them on every route.
checks=(--checks all)
if [ -n "$default_limits" ]; then
    checks+=(--exclude-checks missing_required_header,ignored_auth)
fi
echo "schemathesis: seed $seed, $max_examples examples, $([ -n "$default_limits" ] && echo default || echo raised) rate limits, ${db_url%%:*}"
env ${limits[@]+"${limits[@]}"} \
LISTEN_ADDR="127.0.0.1:$port" \
PROVIDER_API_KEYS=schemathesis-key \
TREEFORT_API_URL="http://127.0.0.1:$treefort_port/v1" \
TREEFORT_TOKEN_URL="http://127.0.0.1:$treefort_port/oauth2/token" \
TREEFORT_CLIENT_ID=client TREEFORT_CLIENT_SECRET=secret TREEFORT_API_VERSION=2024-10-01 \
LAUNCH_TOKEN_SECRET=schemathesis-launch-token-secret-0123456789 \
LOG_FORMAT=json RUST_LOG=warn \
    "$bin" serve 2>"$work/service.log" &
service_pid=$!
for _ in $(seq 1 100); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

set +e
schemathesis --config-file "$config" run openapi.yaml \
    --url "http://127.0.0.1:$port" \
    -H "Authorization: Bearer schemathesis-key" \
    "${checks[@]}" \
    --seed "$seed" \
    --max-examples "$max_examples" \
    --generation-database none \
    --workers 1 \
    --no-color
status=$?
set -e
if [ "$status" -ne 0 ]; then
    echo "--- service log (last 40 lines) ---"
    tail -n 40 "$work/service.log"
fi
exit "$status"
