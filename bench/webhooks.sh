#!/usr/bin/env bash
# Outbound webhook fan-out: N events (default 10 000) to 3 endpoints on loopback, one of them
# slow (200 ms an answer), measured from outside on a release build (bench/webhook_fanout.py).
#   bench/webhooks.sh                                     # SQLite in a temporary folder
#   DATABASE_URL=postgres://…/bench bench/webhooks.sh     # a database of its own
# N (10000), BIN (the binary; default: a release build of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-10000}
if [ -z "${BIN:-}" ]; then cargo build --release --locked -q; fi
bin=${BIN:-target/release/treefort-webpay}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
cleanup() { kill "${service_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$work/service.log" "$KEEP_LOG"; rm -rf "$work"; }
trap cleanup EXIT
export DATABASE_URL="${DATABASE_URL:-sqlite://$work/bench.db}"
export WEBHOOK_SIGNING_KEY=bench-webhook-signing-key-0123456789abcdef WEBHOOKS_ALLOW_PRIVATE=true
port=$(free_port)
receivers=()
for _ in 1 2 3; do receivers+=("$(free_port)"); done
key=$("$bin" apikeys create --name bench --scope write | head -n 1)
for p in "${receivers[@]}"; do
    "$bin" webhooks add --url "http://127.0.0.1:$p/hook" --events launch_token.created >/dev/null
done
LISTEN_ADDR="127.0.0.1:$port" PROVIDER_API_KEYS=bench RATE_LIMIT_TREEFORT_PER_MINUTE=1000000 \
LOG_FORMAT=json RUST_LOG=info "$bin" serve 2>"$work/service.log" &
service_pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
python3 bench/webhook_fanout.py "http://127.0.0.1:$port" "$key" "$n" "${receivers[@]}"
echo "database: ${DATABASE_URL%%:*}, $(nproc) cores"
# What went wrong on the way, if anything (the warnings of the start-up are expected).
if grep -v 'TREEFORT_API_URL\|PAYMENT_GATEWAY\|SMTP_URL' "$work/service.log" | grep -q '"level":"\(ERROR\|WARN\)"\|panicked'; then
    echo "the service logged warnings or errors:" >&2
    grep -v 'TREEFORT_API_URL\|PAYMENT_GATEWAY\|SMTP_URL' "$work/service.log" |
        grep -o '"level":"\(ERROR\|WARN\)","fields":{[^}]*}\|panicked.*' | sort | uniq -c | sort -rn | head -5 >&2
    exit 1
fi
