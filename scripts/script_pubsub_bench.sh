#!/usr/bin/env bash
# EVALSHA and PUBLISH fan-out on flowkv vs redis-server (issue 5's measurements), which the
# shared compare.sh does not run.
#
# Both servers are pinned to core 0 (flowkv with one worker thread), the clients to core 1.
# EVALSHA runs a script that reads one key and increments another (50 clients); PUBLISH
# sends to a channel with 10 subscribed redis-cli clients. Each round runs both servers back
# to back (alternating which goes first); the script prints requests/s per round and the
# median ratio flowkv/redis.
#
# Usage: scripts/script_pubsub_bench.sh [rounds (default 5)] [requests per run (default 200000)]
# Env: FLOWKV (default target/release/flowkv-server), PORT_BASE (default 21870).
set -euo pipefail

ROUNDS=${1:-5}
REQUESTS=${2:-200000}
FLOWKV=${FLOWKV:-target/release/flowkv-server}
PORT_BASE=${PORT_BASE:-21870}
# shellcheck source=lib/server_pair.sh
. "$(dirname "$0")/lib/server_pair.sh"

for p in "$REDIS_PORT" "$FLOWKV_PORT"; do
    for _ in $(seq 10); do
        taskset -c 1 redis-cli -p "$p" subscribe news >/dev/null 2>&1 &
        PIDS+=($!)
    done
done
sleep 0.5

SCRIPT="local v = redis.call('GET', KEYS[1]) return redis.call('INCR', KEYS[2])"
declare -A SHA
for p in "$REDIS_PORT" "$FLOWKV_PORT"; do SHA[$p]=$(redis-cli -p "$p" script load "$SCRIPT"); done

evalsha() { bench_run "$1" EVALSHA "${SHA[$1]}" 2 'k:__rand_int__' 'c:__rand_int__'; }
publish() { bench_run "$1" PUBLISH news 'hello world'; }

compare_rounds evalsha evalsha
compare_rounds publish publish
