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
    for _ in $(seq 10); do
        taskset -c 1 redis-cli -p "$p" subscribe news >/dev/null 2>&1 &
        PIDS+=($!)
    done
done
sleep 0.5

SCRIPT="local v = redis.call('GET', KEYS[1]) return redis.call('INCR', KEYS[2])"
declare -A SHA
for p in "$REDIS_PORT" "$FLOWKV_PORT"; do SHA[$p]=$(redis-cli -p "$p" script load "$SCRIPT"); done

run() { # port, command words...
    local port=$1
    shift
    taskset -c 1 redis-benchmark -p "$port" -c 50 -n "$REQUESTS" -r 100000 --csv "$@" 2>/dev/null |
        awk -F'"' 'NR == 2 { print $4 }'
}
evalsha() { run "$1" EVALSHA "${SHA[$1]}" 2 'k:__rand_int__' 'c:__rand_int__'; }
publish() { run "$1" PUBLISH news 'hello world'; }

for bench in evalsha publish; do
    ratios=()
    for r in $(seq "$ROUNDS"); do
        if ((r % 2)); then a=$($bench "$REDIS_PORT"); b=$($bench "$FLOWKV_PORT"); else
            b=$($bench "$FLOWKV_PORT"); a=$($bench "$REDIS_PORT"); fi
        ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')
        ratios+=("$ratio")
        printf '%s round %d: redis %s req/s, flowkv %s req/s, ratio %s\n' "$bench" "$r" "$a" "$b" "$ratio"
    done
    median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    echo "$bench: median ratio flowkv/redis = $median"
done
