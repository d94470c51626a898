#!/usr/bin/env bash
# A single-node Kafka (KRaft, broker+controller in one JVM) for development and tests,
# run from the jars deploy/kafka/pom.xml resolves into deploy/kafka/.dist/libs.
#
#   kafka.sh fetch                      resolve the broker jars (once; quiet)
#   kafka.sh start [options]            start the broker, wait until it serves, create topics
#   kafka.sh stop [--data-dir DIR]      stop it (SIGTERM, then SIGKILL after a bound)
#   kafka.sh status [--data-dir DIR]    exit 0 when running, 3 when not
#
# start options (environment variable in brackets):
#   --port N              PLAINTEXT port on 127.0.0.1 [KAFKA_PORT, default 9092]
#   --controller-port N   CONTROLLER port [KAFKA_CONTROLLER_PORT; default: the one used last
#                         time in this data dir, else port+1, else any free port]
#   --data-dir DIR        config, pid, logs, partitions [KAFKA_DATA_DIR, default <repo>/var/kafka]
#   --timeout S           seconds to wait for the broker [KAFKA_START_TIMEOUT, default 60]
#   --no-topics           do not create the platform topics
#   --watch-pid PID       stop the broker when process PID exits [KAFKA_WATCH_PID]
# Other environment: JAVA (java binary), KAFKA_HEAP_OPTS (default -Xms256m -Xmx512m),
# KAFKA_EXTRA_CONFIG (extra server.properties lines), PYTHON (interpreter with
# collect_common installed; default <repo>/.venv/bin/python, else python3).
#
# The data dir is formatted only once, so stop + start keeps topics and messages.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
LIBS="$HERE/.dist/libs"

die() { echo "kafka.sh: $*" >&2; exit 1; }
note() { echo "kafka.sh: $*" >&2; }

java_bin() {
  local java="${JAVA:-java}"
  command -v "$java" >/dev/null 2>&1 || die "java not found: $java (set JAVA or put java on PATH)"
  command -v "$java"
}

python_bin() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
  if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then echo "$REPO_ROOT/.venv/bin/python"; return; fi
  command -v python3 >/dev/null 2>&1 || die "python3 not found (set PYTHON)"
  command -v python3
}

libs_present() { compgen -G "$LIBS/*.jar" >/dev/null; }

# mvn -q, showing its output only when it fails.
quiet_mvn() {
  local out rc=0
  out="$(mvn -q -B -Dstyle.color=never "$@" 2>&1)" || rc=$?
  if [[ $rc -ne 0 ]]; then printf '%s\n' "$out" >&2; fi
  return "$rc"
}

cmd_fetch() {
  if ! libs_present; then
    command -v mvn >/dev/null 2>&1 || die "mvn not found; cannot resolve the Kafka jars"
    note "resolving Kafka jars into $LIBS"
    quiet_mvn -f "$HERE/pom.xml" dependency:copy-dependencies \
      || die "mvn dependency:copy-dependencies failed"
    libs_present || die "no jars in $LIBS after mvn"
  fi
}

classpath() { echo "$LIBS/*"; }

# Seconds since an $EPOCHREALTIME stamp, with millisecond precision.
elapsed() {
  local now="${EPOCHREALTIME/[.,]/}" then="${1/[.,]/}" ms
  ms=$(((now - then) / 1000))
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# True when PID exists and is not a zombie.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)"
  [[ "$state" != "Z" ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  "$(python_bin)" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- options -------------------------------------------------------------------------------
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-}"
DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/var/kafka}"
TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
TOPICS=1
WATCH_PID="${KAFKA_WATCH_PID:-}"

parse_opts() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) PORT="${2:?--port needs a value}"; shift 2 ;;
      --controller-port) CONTROLLER_PORT="${2:?--controller-port needs a value}"; shift 2 ;;
      --data-dir) DATA_DIR="${2:?--data-dir needs a value}"; shift 2 ;;
      --timeout) TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
      --no-topics) TOPICS=0; shift ;;
      --watch-pid) WATCH_PID="${2:?--watch-pid needs a value}"; shift 2 ;;
      *) die "unknown option: $1" ;;
    esac
  done
  [[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port: $PORT"
  DATA_DIR="$(realpath -m -- "$DATA_DIR")"
  CONFIG="$DATA_DIR/server.properties"
  LOG4J_CONFIG="$DATA_DIR/log4j2.properties"
  PID_FILE="$DATA_DIR/kafka.pid"
  LOG_FILE="$DATA_DIR/kafka.log"
  OUT_FILE="$DATA_DIR/kafka.out"
  LOG_DIRS="$DATA_DIR/logs"
}

# Serialise start/stop/watch on one data dir (fd 9; closed for the processes we launch).
lock_data_dir() {
  exec 9>"$DATA_DIR/.kafka.sh.lock"
  flock -w 120 9 || die "timed out waiting for the lock on $DATA_DIR"
}

# The pid in the pid file, if that process is alive and is our broker.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  # Guard against a recycled pid: the process must be running our config.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$CONFIG" || return 1
  echo "$pid"
}

log_tail() {
  local f
  for f in "$OUT_FILE" "$LOG_FILE"; do
    if [[ -s "$f" ]]; then
      echo "--- tail of $f ---" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

write_config() {
  local cport="$1"
  cat >"$CONFIG" <<EOF
# Generated by deploy/kafka/kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$LOG_DIRS
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=16777216
log.retention.hours=24
log.retention.bytes=268435456
log.retention.check.interval.ms=60000
log.cleaner.dedupe.buffer.size=8388608
num.network.threads=2
num.io.threads=4
EOF
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
    printf '%s\n' "$KAFKA_EXTRA_CONFIG" >>"$CONFIG"
  fi
  cat >"$LOG4J_CONFIG" <<EOF
# Generated by deploy/kafka/kafka.sh.
status = warn
name = kafka
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOG_FILE
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FILE
EOF
}

choose_controller_port() {
  if [[ -n "$CONTROLLER_PORT" ]]; then echo "$CONTROLLER_PORT"; return; fi
  local previous=""
  if [[ -f "$CONFIG" ]]; then
    previous="$(sed -n 's/^controller\.quorum\.voters=1@127\.0\.0\.1:\([0-9]*\)$/\1/p' "$CONFIG")"
  fi
  if [[ -n "$previous" && "$previous" != "$PORT" ]] && ! port_open "$previous"; then
    echo "$previous"
  elif ! port_open "$((PORT + 1))"; then
    echo "$((PORT + 1))"
  else
    free_port
  fi
}

format_storage() {
  local java="$1" cp="$2"
  if [[ -f "$LOG_DIRS/meta.properties" ]]; then
    return 0
  fi
  mkdir -p "$LOG_DIRS"
  local cluster_id
  cluster_id="$("$java" -cp "$cp" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    kafka.tools.StorageTool random-uuid 2>>"$OUT_FILE" | tail -n1)"
  [[ -n "$cluster_id" ]] || { log_tail; die "could not generate a cluster id"; }
  "$java" -cp "$cp" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$CONFIG" >>"$OUT_FILE" 2>&1 \
    || { log_tail; die "formatting $LOG_DIRS failed"; }
}

# Wait until the broker answers a metadata request (aiokafka when the interpreter has it,
# else a plain TCP connect), or the process dies, or the deadline passes.
wait_ready() {
  local pid="$1" deadline=$((SECONDS + TIMEOUT))
  while ! port_open "$PORT"; do
    alive "$pid" || return 2
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
  local py
  py="$(python_bin)"
  "$py" - "$PORT" "$pid" "$((deadline - SECONDS))" <<'EOF'
import asyncio, os, sys, time

port, pid, budget = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
try:
    from aiokafka import AIOKafkaClient
except ImportError:
    sys.exit(0)  # the port answers; that is all we can check without aiokafka


async def ready() -> int:
    deadline = time.monotonic() + max(budget, 1.0)
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            return 2
        client = AIOKafkaClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=5000)
        try:
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
            if metadata.brokers():
                return 0
        except Exception:
            pass
        finally:
            await client.close()
        if time.monotonic() > deadline:
            return 1
        await asyncio.sleep(0.1)


sys.exit(asyncio.run(ready()))
EOF
}

cmd_start() {
  parse_opts "$@"
  mkdir -p "$DATA_DIR"
  lock_data_dir
  local pid
  if pid="$(running_pid)"; then
    note "already running (pid $pid) on 127.0.0.1:$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1://p' "$CONFIG")"
    if [[ "$TOPICS" == 1 ]]; then create_topics; fi
    return 0
  fi
  rm -f "$PID_FILE"
  if port_open "$PORT"; then die "port $PORT is already in use"; fi
  cmd_fetch
  local java cp cport
  java="$(java_bin)"
  cp="$(classpath)"
  cport="$(choose_controller_port)"
  [[ "$cport" != "$PORT" ]] || die "controller port must differ from port $PORT"
  if port_open "$cport"; then die "controller port $cport is already in use"; fi
  write_config "$cport"
  : >"$OUT_FILE"
  format_storage "$java" "$cp"

  local started="$EPOCHREALTIME" heap
  heap="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
  # shellcheck disable=SC2086  # heap options are meant to split into words
  setsid "$java" $heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    -cp "$cp" kafka.Kafka "$CONFIG" >>"$OUT_FILE" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"

  local rc=0
  wait_ready "$pid" || rc=$?
  if [[ $rc -ne 0 ]]; then
    if [[ $rc -eq 2 ]]; then
      note "broker exited during startup"
    else
      note "broker not ready within ${TIMEOUT}s"
    fi
    stop_pid "$pid"
    rm -f "$PID_FILE"
    log_tail
    exit 1
  fi
  note "broker up on 127.0.0.1:$PORT (pid $pid, controller port $cport," \
    "ready $(elapsed "$started")s after launch)"
  if [[ -n "$WATCH_PID" ]]; then
    setsid "$0" _watch "$WATCH_PID" "$DATA_DIR" </dev/null >/dev/null 2>&1 9>&- &
  fi
  if [[ "$TOPICS" == 1 ]]; then create_topics; fi
}

create_topics() {
  "$(python_bin)" -m collect_common.bus.topics --bootstrap "127.0.0.1:$PORT" >&2 \
    || die "creating the platform topics failed"
}

stop_pid() {
  local pid="$1" deadline=$((SECONDS + ${KAFKA_STOP_TIMEOUT:-30}))
  kill -TERM "$pid" 2>/dev/null || return 0
  while alive "$pid"; do
    if ((SECONDS >= deadline)); then
      note "pid $pid did not stop in time; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  # Await the final exit so the ports are free when we return.
  while alive "$pid"; do sleep 0.05; done
}

cmd_stop() {
  parse_opts "$@"
  if [[ ! -d "$DATA_DIR" ]]; then
    note "not running (no $DATA_DIR)"
    return 0
  fi
  lock_data_dir
  local pid
  if pid="$(running_pid)"; then
    stop_pid "$pid"
    note "stopped (pid $pid)"
  else
    note "not running"
  fi
  rm -f "$PID_FILE"
}

cmd_status() {
  parse_opts "$@"
  local pid
  if pid="$(running_pid)"; then
    echo "running pid=$pid data_dir=$DATA_DIR"
  else
    echo "stopped data_dir=$DATA_DIR"
    exit 3
  fi
}

# Stop the broker of DATA_DIR once process WATCHED exits (guards against leaked brokers
# when the test process is killed without running its cleanup).
cmd_watch() {
  local watched="$1"
  parse_opts --data-dir "$2"
  local pid
  pid="$(running_pid)" || exit 0
  while alive "$watched"; do
    alive "$pid" || exit 0
    sleep 1
  done
  [[ -d "$DATA_DIR" ]] || exit 0
  lock_data_dir
  if [[ "$(running_pid || true)" == "$pid" ]]; then
    stop_pid "$pid"
    rm -f "$PID_FILE"
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    fetch) cmd_fetch ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    _watch) cmd_watch "$@" ;;
    *) sed -n '2,23s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
  esac
}

main "$@"
