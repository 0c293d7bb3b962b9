# Sourced by the load and overload parts: builds the server and loadgen,
# and starts and stops a server on core 0 (loadgen runs on core 1).
#
#   serve ARGS...   a server with a fresh data dir; sets pid and addr
#   stop            stops it
#   field KEY LINE  the value of KEY=VALUE in loadgen's line

cargo build --release --locked -p dataport -p loadgen >&2
bin=target/release/dataport
gen=target/release/loadgen
work=$(mktemp -d)
pid=
stop() { [[ -z $pid ]] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=; }; }
trap 'stop; rm -rf "$work"' EXIT

serve() {
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    addr=127.0.0.1:$port
    rm -rf "$work/data"
    taskset -c 0 "$bin" serve --listen "$addr" --data-dir "$work/data" --log-format json "$@" >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "reliability: the server did not listen on $addr" >&2
    exit 1
}

field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
