#!/usr/bin/env bash
# A throw-away three-node RabbitMQ cluster on this machine, for the cluster tests and
# docs/scaling.md. It leaves the broker on 5672 alone: its nodes have names, ports, data and
# logs of their own and are clustered only with each other.
#
#   scripts/rabbitmq-cluster.sh up        start the cluster (idempotent; starts missing nodes)
#   scripts/rabbitmq-cluster.sh down      kill the nodes and delete their data
#   scripts/rabbitmq-cluster.sh kill N    SIGKILL node N's Erlang VM (a crash, no goodbye)
#   scripts/rabbitmq-cluster.sh start N   start node N again; it rejoins the cluster
#   scripts/rabbitmq-cluster.sh status    each node: running or not, pid, RSS, port
#   scripts/rabbitmq-cluster.sh urls      the AMQP URL list of the three nodes
#
# Node N (1..3) is fibrpcN@localhost, AMQP on 127.0.0.1:$((BASE + N)) (5681..5683 by
# default), Erlang distribution on AMQP port + 20000, no plugins (no management). Data and
# logs live under $FIBRPC_CLUSTER_DIR (default /var/lib/fibrpc-cluster), which the script
# owns. The nodes share the local Erlang cookie, so `rabbitmqctl -n fibrpcN@localhost` works.
set -euo pipefail

dir="${FIBRPC_CLUSTER_DIR:-/var/lib/fibrpc-cluster}"
base="${FIBRPC_CLUSTER_BASE_PORT:-5680}"
nodes=(1 2 3)

node_name() { echo "fibrpc$1@localhost"; }
amqp_port() { echo $((base + $1)); }
node_dir() { echo "$dir/node$1"; }

# The nodes run as the broker's user when there is one (as the packaged broker does), so
# that they read its Erlang cookie; otherwise as whoever runs this, with their own cookie.
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
  as_broker=(runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq)
else
  as_broker=(env HOME="$HOME")
fi
ctl() { # N command...
  local n=$1
  shift
  "${as_broker[@]}" /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$(node_name "$n")" "$@"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The pid of node N's Erlang VM, or nothing: from its pid file, checked against the
# process's environment (a stale file never points this script at someone else's process),
# else found among the beam.smp processes by that environment.
node_pid() {
  local n=$1 pid proc
  pid=$(cat "$(node_dir "$n")/pid" 2>/dev/null || true)
  if [ -n "$pid" ] && is_node "$n" "$pid"; then
    echo "$pid"
    return
  fi
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    [ "$(cat "$proc/comm" 2>/dev/null)" = beam.smp ] && is_node "$n" "$pid" && { echo "$pid"; return; }
  done
}

is_node() { # N pid
  { tr '\0' '\n' <"/proc/$2/environ"; } 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$(node_name "$1")"
}

rss_mib() { awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

write_config() {
  local n=$1 d
  d=$(node_dir "$n")
  mkdir -p "$d/log"
  echo "[]." >"$d/enabled_plugins"
  cat >"$d/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$(amqp_port "$n")
cluster_name = fibrpc-test-cluster
log.console = false
log.file.level = info
CONF
  # Nodes 2 and 3 join node 1 as they boot the first time (RabbitMQ's own peer discovery);
  # a node with data of its own ignores this and rejoins the cluster it was in.
  if [ "$n" != 1 ]; then
    echo "cluster_formation.peer_discovery_backend = classic_config" >>"$d/rabbitmq.conf"
    echo "cluster_formation.classic_config.nodes.1 = $(node_name 1)" >>"$d/rabbitmq.conf"
  fi
  # Read instead of /etc/rabbitmq/rabbitmq-env.conf, which names the shared node.
  cat >"$d/rabbitmq-env.conf" <<CONF
ERL_EPMD_ADDRESS=127.0.0.1
CONF
}

start_node() {
  local n=$1 d
  d=$(node_dir "$n")
  write_config "$n"
  rm -f "$d/pid" # a killed node's, which would look like a dead boot
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$dir"; fi
  "${as_broker[@]}" \
    RABBITMQ_NODENAME="$(node_name "$n")" \
    RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$d" \
    RABBITMQ_MNESIA_DIR="$d/data" \
    RABBITMQ_LOG_BASE="$d/log" \
    RABBITMQ_PID_FILE="$d/pid" \
    RABBITMQ_DIST_PORT=$(($(amqp_port "$n") + 20000)) \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    /usr/lib/rabbitmq/bin/rabbitmq-server -detached
}

# Waits for node N's AMQP listener (opened late in the boot), then for the boot to finish.
# Polling the port is cheap; each rabbitmqctl run costs about a second of CPU.
await_node() {
  local n=$1 port
  port=$(amqp_port "$n")
  for _ in $(seq 1 900); do
    port_open "$port" && break
    # The pid file comes early in the boot: without its process, the node has died.
    [ -f "$(node_dir "$n")/pid" ] && [ -z "$(node_pid "$n")" ] && break
    sleep 0.2
  done
  if ! port_open "$port" ||
    ! timeout 120 "${as_broker[@]}" /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$(node_name "$n")" \
      await_startup >/dev/null 2>&1; then
    echo "node $n ($(node_name "$n")) did not start; log: $(node_dir "$n")/log" >&2
    return 1
  fi
}

running() { [ -n "$(node_pid "$1")" ] && port_open "$(amqp_port "$1")"; }

cluster_size() { # nodes node 1 sees running in its cluster
  ctl 1 eval 'length(rabbit_nodes:all_running()).' 2>/dev/null || echo 0
}

# Deletes the cluster's folder, but only one this script made (it holds a marker file).
remove_dir() {
  [ -e "$dir" ] || return 0
  [ -f "$dir/.fibrpc-cluster" ] || {
    echo "$dir exists but was not made by this script; not deleting it" >&2
    return 1
  }
  rm -rf "$dir"
}

# Node 1 first, then 2 and 3 at once, each joining node 1 as it boots: about as quick as
# three standalone nodes, and no stop_app/reset/join_cluster/start_app round afterwards.
fresh_cluster() {
  local started n
  started=$(now)
  remove_dir
  mkdir -p "$dir"
  touch "$dir/.fibrpc-cluster"
  start_node 1
  await_node 1
  echo "node 1 up in $(since "$started") s"
  for n in "${nodes[@]:1}"; do start_node "$n"; done
  for n in "${nodes[@]:1}"; do await_node "$n"; done
  echo "cluster of 3 up in $(since "$started") s"
}

cmd_up() {
  local n any=0 started
  for n in "${nodes[@]}"; do running "$n" && any=1; done
  if [ "$any" = 0 ]; then
    fresh_cluster
  else
    for n in "${nodes[@]}"; do running "$n" || cmd_start "$n"; done
  fi
  local size
  size=$(cluster_size)
  if [ "$size" != 3 ]; then
    echo "the cluster has $size running nodes, not 3; try: $0 down && $0 up" >&2
    return 1
  fi
  cmd_status
}

cmd_down() {
  local n pid
  for n in "${nodes[@]}"; do
    pid=$(node_pid "$n")
    [ -n "$pid" ] && kill -KILL "$pid"
    for _ in $(seq 1 100); do port_open "$(amqp_port "$n")" || break; sleep 0.1; done
  done
  remove_dir
  echo "cluster down, $dir removed"
}

cmd_kill() {
  local n=$1 pid
  pid=$(node_pid "$n")
  [ -n "$pid" ] || { echo "node $n is not running" >&2; return 1; }
  kill -KILL "$pid"
  for _ in $(seq 1 100); do
    [ -d "/proc/$pid" ] || { echo "node $n (pid $pid) killed"; return 0; }
    sleep 0.05
  done
  echo "node $n (pid $pid) is still there after SIGKILL" >&2
  return 1
}

cmd_start() {
  local n=$1 started
  if running "$n"; then
    echo "node $n is already running"
    return 0
  fi
  if [ -n "$(node_pid "$n")" ]; then
    echo "node $n is booting; waiting for it"
    await_node "$n"
    return
  fi
  [ -d "$(node_dir "$n")/data" ] || { echo "node $n has no data: run '$0 up'" >&2; return 1; }
  started=$(now)
  start_node "$n"
  await_node "$n"
  echo "node $n started and rejoined in $(since "$started") s"
}

cmd_status() {
  local n pid
  for n in "${nodes[@]}"; do
    pid=$(node_pid "$n")
    if [ -n "$pid" ] && port_open "$(amqp_port "$n")"; then
      echo "node $n $(node_name "$n") amqp://127.0.0.1:$(amqp_port "$n") running pid $pid rss $(rss_mib "$pid") MiB"
    else
      echo "node $n $(node_name "$n") amqp://127.0.0.1:$(amqp_port "$n") down"
    fi
  done
}

cmd_urls() {
  local n urls=()
  for n in "${nodes[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2f"); done
  (IFS=,; echo "${urls[*]}")
}

node_arg() {
  case "${1:-}" in
    1 | 2 | 3) return 0 ;;
    *) echo "usage: $0 kill|start N (N = 1, 2 or 3)" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  kill) node_arg "${2:-}" && cmd_kill "$2" ;;
  start) node_arg "${2:-}" && cmd_start "$2" ;;
  status) cmd_status ;;
  urls) cmd_urls ;;
  *) echo "usage: $0 up|down|kill N|start N|status|urls" >&2; exit 2 ;;
esac
