#!/usr/bin/env bash
# Load benchmark of the ansinh API on loopback (docs/BENCHMARKS.md, "API
# (loopback load)"): builds ansinh and ansinh-load, generates the import
# file of BenchmarkImport, imports it into a fresh data directory, starts
# `ansinh serve` on 127.0.0.1 with a raised rate limit, waits for /readyz,
# runs the balance, register and payment-method scenarios, and stops the
# server. Everything lives in a temporary directory, removed at the end
# (KEEP=1 keeps it, with the server's log).
#
#   docs/bench/api-load.sh                    # 300,000 beneficiaries, 20 s per scenario
#   LINES=10000 DURATION=5s docs/bench/api-load.sh
#
# Settings (environment): LINES (300000), DURATION (20s), WARMUP (3s),
# CONCURRENCY ("16 24 64": each scenario runs once per value), SCENARIOS
# ("balance register payment-method"), IDLE_MAX (600: before each run the
# script waits, up to this many seconds, for the server to be idle, under 1 %
# of a CPU over 5 s, so that the compactions after the import and after each
# run's writes do not land on the next run; 0 skips the wait), LOG_LEVEL (info: the server writes its access log, as in
# production), KEEP (empty), PIN (empty; "1": the server runs on CPU 0 and
# the load generator on CPU 1, with taskset, so that the figures are those
# of one core serving and one core loading), CLIENT (direct: ansinh-load's
# own connection per worker; stdlib: net/http's Transport, which costs the
# generator about 50 % more CPU per request). The server and the load generator share the
# machine's CPUs; each report gives the server's CPU time per request
# (from /proc), which depends less on what else runs than the rate does.
set -euo pipefail

LINES=${LINES:-300000}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
CONCURRENCY=${CONCURRENCY:-16 24 64}
IDLE_MAX=${IDLE_MAX:-600}
SCENARIOS=${SCENARIOS:-balance register payment-method}
LOG_LEVEL=${LOG_LEVEL:-info}
PIN=${PIN:-}
CLIENT=${CLIENT:-direct}
server_cpu=()
load_cpu=()
if [[ -n $PIN ]]; then
	server_cpu=(taskset -c 0)
	load_cpu=(taskset -c 1)
fi

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ansinh-load.XXXXXX")
server_pid=""

cleanup() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [[ -n ${KEEP:-} ]]; then
		echo "kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

say "machine"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc: $(nproc)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "go: $(go version)"
echo "commit: $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- ':!docs' 2>/dev/null || echo ' (uncommitted changes)')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pinned: ${PIN:-no}; load generator client: $CLIENT"

say "build"
(cd "$repo" && go build -o "$work/ansinh" ./cmd/ansinh && go build -o "$work/ansinh-load" ./cmd/ansinh-load)

say "generate $LINES beneficiaries"
"$work/ansinh-load" gen-csv --lines "$LINES" --out "$work/people.csv"

say "import"
data="$work/data"
token=$("$work/ansinh" users add --name bench --role registrar --data "$data")
start=$(date +%s)
"$work/ansinh" import beneficiaries --file "$work/people.csv" --data "$data" --as bench 2>"$work/import.log" | tail -1
echo "import took $(($(date +%s) - start)) s"

say "serve"
"${server_cpu[@]}" "$work/ansinh" serve --addr 127.0.0.1:0 --data "$data" --rate-limit 100000 \
	--log-format json --log-level "$LOG_LEVEL" 2>"$work/serve.log" &
server_pid=$!
addr=""
for _ in $(seq 1 600); do
	addr=$(grep -m1 '"msg":"listening"' "$work/serve.log" 2>/dev/null | sed -n 's/.*"addr":"\([^"]*\)".*/\1/p' || true)
	[[ -n $addr ]] && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
	sleep 0.1
done
[[ -n $addr ]] || { echo "the server did not say where it listens" >&2; exit 1; }
url="http://$addr"
echo "listening on $url"
"$work/ansinh-load" wait --url "$url" --timeout 30m
# /readyz says ready once the read models lag by less than 30 s, which
# after a fresh import can be before they have applied the whole log: a
# balance asked for then is a 404, and the catch-up's CPU would count in
# the first run. Wait for the read models to reach the head of the log.
for _ in $(seq 1 18000); do
	grep -q '"msg":"read models caught up"' "$work/serve.log" && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
	sleep 0.1
done
grep -q '"msg":"read models caught up"' "$work/serve.log" || { echo "the read models did not catch up within 30 minutes" >&2; exit 1; }
grep -m1 '"msg":"read models caught up"' "$work/serve.log" | sed -n 's/.*"duration_ms":\([0-9]*\).*/read models caught up after \1 ms/p'

# wait_idle waits until the server used under 1 % of a CPU over 5 s:
# Pebble's compactions and the read models' catch-up are done.
wait_idle() {
	local start=$SECONDS before after
	((IDLE_MAX > 0)) || return 0
	while ((SECONDS - start < IDLE_MAX)); do
		before=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
		sleep 5
		after=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
		# At most 0.05 s of CPU in 5 s.
		if (((after - before) * 100 <= 5 * $(getconf CLK_TCK))); then
			echo "server idle after $((SECONDS - start)) s"
			return 0
		fi
	done
	echo "server still busy after $IDLE_MAX s; measuring anyway"
}

export ANSINH_TOKEN=$token
# Each register run takes its own range of citizen ID serials, past the
# imported ones (0 to LINES-1).
register_runs=$(wc -w <<<"$CONCURRENCY")
serial_step=$(((1000000 - LINES) / register_runs))
register_run=0
status=0
for sc in $SCENARIOS; do
	for conc in $CONCURRENCY; do
		say "scenario $sc, $conc connections"
		args=(--url "$url" --scenario "$sc" --duration "$DURATION" --warmup "$WARMUP" --concurrency "$conc" --server-pid "$server_pid" --client "$CLIENT")
		case $sc in
		balance | payment-method) args+=(--ids "$work/people.csv") ;;
		register)
			args+=(--first-serial "$((LINES + register_run * serial_step))")
			register_run=$((register_run + 1))
			;;
		esac
		wait_idle
		echo "command: ansinh-load ${args[*]}"
		echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
		"${load_cpu[@]}" "$work/ansinh-load" "${args[@]}" || status=1
	done
done

say "stop"
kill -TERM "$server_pid"
wait "$server_pid" || status=1
server_pid=""
grep -c '"msg":"request"' "$work/serve.log" | sed 's/^/request log lines: /'
exit $status
