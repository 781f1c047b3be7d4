#!/usr/bin/env bash
# The Stripe fault campaign (tests/api/stripe_campaign.rs) for a long run by hand: RUNS runs in
# STREAMS streams side by side (a run mostly waits: on pauses, webhooks and restarts), seeds SEED,
# SEED+1, …, then one summary: runs, violations, kills, faults by kind.
#   tests/fault_campaign.sh                                   # 1 000 runs on SQLite
#   TEST_DATABASE_URL=postgres://…/test tests/fault_campaign.sh
# RUNS (1000), STREAMS (6), SEED (1000), OUT (target/fault-campaign: each stream's log),
# PROFILE (dev; release builds the tests and the binary optimised: less CPU a run, more streams).
# FAULT_N, FAULT_KILLS, FAULT_DAY_KILLS and FAULT_PERCENT are passed on to every run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-1000} streams=${STREAMS:-6} seed=${SEED:-1000} out=${OUT:-target/fault-campaign}
mkdir -p "$out"
rm -f "$out"/stream-*.log
flags=(--test api)
[ "${PROFILE:-dev}" = release ] && flags+=(--release)
# The test binary is built once and run directly: an edit made meanwhile changes no stream.
bin=$(cargo test "${flags[@]}" --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*\)).*/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "the test binary was not built" >&2; exit 1; }
per=$(((runs + streams - 1) / streams))
pids=()
for i in $(seq 0 $((streams - 1))); do
    first=$((seed + i * per))
    count=$((runs - i * per < per ? runs - i * per : per))
    [ "$count" -gt 0 ] || break
    FAULT_RUNS=$count FAULT_SEED=$first "$bin" stripe_campaign --nocapture \
        >"$out/stream-$i.log" 2>&1 &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
python3 - "$out" "$runs" "$failed" <<'EOF'
import glob, json, re, sys
out, asked, failed_streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs, kills, shoppers, faults, holding, violations, panics = 0, 0, 0, {}, {}, [], []
for path in sorted(glob.glob(f"{out}/stream-*.log")):
    for line in open(path, errors="replace"):
        m = re.match(r"campaign run seed=(\d+): (\d+) shoppers .*?; (\d+) kills;(?: kills holding leases (\{.*?\});)? faults (\{.*?\});", line)
        if m:
            runs += 1
            shoppers += int(m.group(2))
            kills += int(m.group(3))
            for kind, n in json.loads(m.group(4) or "{}").items():
                holding[kind] = holding.get(kind, 0) + n
            for kind, n in json.loads(m.group(5)).items():
                faults[kind] = faults.get(kind, 0) + n
        elif "VIOLATION" in line:
            violations.append(line.strip())
        elif "panicked" in line:
            panics.append(f"{path}: {line.strip()}")
in_use = faults.pop("key_in_use", 0)
print(f"runs: {runs} of {asked}; shoppers: {shoppers}; kills: {kills}")
print("kills that caught the process holding leases: " + ", ".join(f"{k} {v}" for k, v in sorted(holding.items())))
print(f"retries Stripe (the proxy) answered 409 idempotency_key_in_use: {in_use}")
print("faults: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())) + f" ({sum(faults.values())} in all)")
print(f"violations: {len(violations)}")
for v in violations[:50]:
    print("  " + v)
for p in panics[:10]:
    print("  " + p)
sys.exit(1 if violations or panics or failed_streams or runs < asked else 0)
EOF
