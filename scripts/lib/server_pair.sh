# Sourced by the redis-benchmark scripts that compare flowkv with redis-server on workloads
# the shared compare.sh does not run (throttle_bench.sh, script_pubsub_bench.sh).
#
# Starts redis-server on $REDIS_PORT and flowkv (one worker thread) on $FLOWKV_PORT, both
# pinned to core 0 so the clients can have core 1, waits until both answer, and stops both
# (and any process added to PIDS) on exit. Needs FLOWKV, PORT_BASE set by the caller.

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

# bench_run port command words...: redis-benchmark (50 clients, 100k random keys, pinned to
# core 1) of one command; prints its requests per second.
bench_run() {
    local port=$1
    shift
    taskset -c 1 redis-benchmark -p "$port" -c 50 -n "$REQUESTS" -r 100000 --csv "$@" 2>/dev/null |
        awk -F'"' 'NR == 2 { print $4 }'
}

# compare_rounds label fn: runs `fn port` on both servers for $ROUNDS rounds, back to back and
# alternating which goes first (absolute numbers drift on a shared machine; ratios of
# neighbours don't much); prints each round and the median ratio flowkv/redis.
compare_rounds() {
    local label=$1 fn=$2 a b r ratio
    local ratios=()
    for r in $(seq "$ROUNDS"); do
        if ((r % 2)); then a=$($fn "$REDIS_PORT"); b=$($fn "$FLOWKV_PORT"); else
            b=$($fn "$FLOWKV_PORT"); a=$($fn "$REDIS_PORT"); fi
        ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')
        ratios+=("$ratio")
        printf '%s round %d: redis %s req/s, flowkv %s req/s, ratio %s\n' "$label" "$r" "$a" "$b" "$ratio"
    done
    printf '%s: median ratio flowkv/redis = %s\n' "$label" \
        "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
}
