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
# shellcheck source=lib/server_pair.sh
. "$(dirname "$0")/lib/server_pair.sh"

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

# The Lua GCRA on redis, CL.THROTTLE on flowkv.
throttle() {
    if [ "$1" = "$REDIS_PORT" ]; then
        bench_run "$1" EVALSHA "$SHA" 1 'rl:__rand_int__' 9 100 60 1
    else
        bench_run "$1" CL.THROTTLE 'rl:__rand_int__' 9 100 60 1
    fi
}

# Both must answer the same shape before timing.
redis-cli -p "$REDIS_PORT" evalsha "$SHA" 1 probe 9 100 60 1 | tr '\n' ' '
echo " <- redis (Lua GCRA)"
redis-cli -p "$FLOWKV_PORT" cl.throttle probe 9 100 60 1 | tr '\n' ' '
echo " <- flowkv (CL.THROTTLE)"

compare_rounds throttle_bench throttle
