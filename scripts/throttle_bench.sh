#!/usr/bin/env bash
# CL.THROTTLE on flowkv vs the same GCRA as a Lua script (EVALSHA) on redis-server.
#
# Both servers are pinned to core 0 (flowkv with one worker thread), redis-benchmark to core 1.
# Each round runs both back to back (alternating which goes first) on 100k random keys with 50
# clients; the script prints each round's requests/s and the median of the per-round ratios
# flowkv/redis. compare.sh only runs its fixed workloads, hence redis-benchmark directly.
#
# Usage: scripts/throttle_bench.sh [rounds (default 5)] [requests per run (default 200000)]
# Env: FLOWKV (default target/release/flowkv-server), PORT_BASE (default 21850).
set -euo pipefail

ROUNDS=${1:-5}
REQUESTS=${2:-200000}
FLOWKV=${FLOWKV:-target/release/flowkv-server}
PORT_BASE=${PORT_BASE:-21850}
REDIS_PORT=$PORT_BASE
FLOWKV_PORT=$((PORT_BASE + 1))
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT

[ -x "$FLOWKV" ] || { echo "build first: cargo build --release -p flowkv-server" >&2; exit 1; }

taskset -c 0 redis-server --port "$REDIS_PORT" --save '' --appendonly no --dir "$DIR" \
    --dbfilename redis.rdb >/dev/null 2>&1 &
PIDS+=($!)
taskset -c 0 "$FLOWKV" --port "$FLOWKV_PORT" --threads 1 --save '' --dir "$DIR" >/dev/null 2>&1 &
PIDS+=($!)
for p in "$REDIS_PORT" "$FLOWKV_PORT"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

# redis-cell's algorithm (see crates/server/src/commands/throttle.rs), in microseconds.
read -r -d '' GCRA <<'LUA' || true
local burst, count, period, qty = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4] or 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = period * 1000000 / count
local tolerance = interval * (burst + 1)
local increment = interval * qty
local stored = redis.call('GET', KEYS[1])
local tat = stored and tonumber(stored) or now
local new_tat = math.max(tat, now) + increment
local diff = now - (new_tat - tolerance)
local limited, retry, ttl = 0, -1, 0
if diff < 0 then
  limited = 1
  if increment <= tolerance then retry = math.ceil(-diff / 1000000) end
  ttl = tat - now
else
  ttl = new_tat - now
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.floor(ttl / 1000)))
end
local next = tolerance - ttl
local remaining = 0
if next > -interval then remaining = math.floor(next / interval) end
return {limited, burst + 1, remaining, retry, math.ceil(ttl / 1000000)}
LUA
SHA=$(redis-cli -p "$REDIS_PORT" script load "$GCRA")

run() { # port, command words...
    local port=$1
    shift
    taskset -c 1 redis-benchmark -p "$port" -c 50 -n "$REQUESTS" -r 100000 --csv "$@" 2>/dev/null |
        awk -F'"' 'NR == 2 { print $4 }'
}
redis_run() { run "$REDIS_PORT" EVALSHA "$SHA" 1 'rl:__rand_int__' 9 100 60 1; }
flowkv_run() { run "$FLOWKV_PORT" CL.THROTTLE 'rl:__rand_int__' 9 100 60 1; }

# Both must answer the same shape before timing.
redis-cli -p "$REDIS_PORT" evalsha "$SHA" 1 probe 9 100 60 1 | tr '\n' ' '
echo " <- redis (Lua GCRA)"
redis-cli -p "$FLOWKV_PORT" cl.throttle probe 9 100 60 1 | tr '\n' ' '
echo " <- flowkv (CL.THROTTLE)"

ratios=()
for r in $(seq "$ROUNDS"); do
    if ((r % 2)); then a=$(redis_run); b=$(flowkv_run); else b=$(flowkv_run); a=$(redis_run); fi
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')
    ratios+=("$ratio")
    printf 'round %d: redis EVALSHA %s req/s, flowkv CL.THROTTLE %s req/s, ratio %s\n' "$r" "$a" "$b" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "throttle_bench: median ratio flowkv/redis = $median"
