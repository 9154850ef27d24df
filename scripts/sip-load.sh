#!/usr/bin/env bash
# SIP load benchmarks: taxline side by side with real peers, in the same run,
# on loopback and free ports, measuring CPU time from /proc.
#
#   scripts/sip-load.sh register   digest REGISTERs: taxline vs Kamailio 5.6
#   scripts/sip-load.sh calls      trunk calls to agents: runs scripts/call-load.sh
#
# register: SIPp (testdata/sipp/register_auth.xml, users from an injection
# CSV) registers USERS agents over and over with digest auth, first against
# `taxline serve`, then against Kamailio (testdata/kamailio/kamailio.cfg:
# auth + auth_db on db_text, usrloc in memory; run with -x tlsf and a large
# -m). For each server it reads utime+stime of the server's processes from
# /proc/PID/stat before and after the measured run and divides by SIPp's
# successful registrations. One registration is REGISTER → 401 → REGISTER
# with credentials → 200, i.e. two requests and one digest check.
#
# Knobs (environment): N (registrations measured, default 20000), RATE
# (per second, default 1000), USERS (agents, default 500), LIMIT (SIPp
# concurrent registrations, default 200), KEEP=1 keeps the work directory,
# TAXLINE_ENV (extra environment for taxline, e.g. "GOMAXPROCS=1 GOGC=200").
#
# Notes:
# - SIPp 3.6 only does MD5 digest; taxline offers it MD5 alone (see
#   docs/SIP-SECURITY.md), so both servers do the same MD5 work.
# - SIPp registers from 127.0.0.1, which the generated config lists as a
#   trunk source: trunk sources are exempt from the per-source REGISTER rate
#   limit, which a load generator on one address would otherwise trip.
# - SIPp runs on the same 2 cores; keep RATE well under ~2,000/s.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-20000}
RATE=${RATE:-1000}
USERS=${USERS:-500}
LIMIT=${LIMIT:-200}
KEEP=${KEEP:-0}
TAXLINE_ENV=${TAXLINE_ENV:-}
CLK_TCK=$(getconf CLK_TCK)

die() { echo "sip-load: $*" >&2; exit 1; }

# need_pkg BINARY PACKAGE... installs the packages with apt-get only when
# BINARY is missing.
need_pkg() {
	local bin=$1; shift
	command -v "$bin" >/dev/null 2>&1 && return 0
	[ "$(id -u)" = 0 ] || die "$bin missing; install: apt-get install -y $*"
	echo "sip-load: installing $*" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; }
}

# free_udp_port prints a port on 127.0.0.1 that is free right now for UDP
# and for TCP (taxline listens on both; loopback TCP ports in TIME_WAIT are
# common on a busy machine).
free_udp_port() {
	python3 - <<'PY'
import socket
for _ in range(200):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        t.close()
        u.close()
    print(port)
    break
else:
    raise SystemExit("no free port")
PY
}

# tree_pids PID prints PID and all its descendants.
tree_pids() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}

# cpu_ticks PID prints utime+stime (clock ticks) summed over PID's tree.
cpu_ticks() {
	local sum=0 p f
	for p in $(tree_pids "$1"); do
		[ -r /proc/"$p"/stat ] || continue
		# Fields after the ")" of comm: 12th and 13th are utime, stime.
		f=$(sed 's/^.*) //' /proc/"$p"/stat)
		set -- $f
		sum=$((sum + ${12} + ${13}))
	done
	echo "$sum"
}

# wait_udp PORT waits (up to 10 s) until a socket listens on udp 127.0.0.1:PORT.
wait_udp() {
	local port=$1 i
	for i in $(seq 1 100); do
		ss -lun | grep -q "127.0.0.1:$port " && return 0
		sleep 0.1
	done
	die "nothing listens on udp 127.0.0.1:$port"
}

# run_sipp PORT COUNT prints SIPp's count of successful registrations.
run_sipp() {
	local port=$1 count=$2 out
	out=$(sipp 127.0.0.1:"$port" -sf "$here/testdata/sipp/register_auth.xml" -inf "$work/users.csv" \
		-m "$count" -r "$RATE" -l "$LIMIT" -recv_timeout 5000 -timeout 600s -nostdin \
		-p "$(free_udp_port)" -i 127.0.0.1 2>&1) || true
	echo "$out" > "$work/sipp-$port-$count.log"
	echo "$out" | awk -F'|' '/Successful call/ {gsub(/ /, "", $3); v=$3} END {print v+0}'
}

# measure NAME PID PORT runs a warm-up and a measured SIPp run against PID
# listening on PORT and prints "NAME ok µs".
measure() {
	local name=$1 pid=$2 port=$3 before after ok
	run_sipp "$port" "$USERS" >/dev/null # every user registers once: first-time work out of the way
	before=$(cpu_ticks "$pid")
	ok=$(run_sipp "$port" "$N")
	after=$(cpu_ticks "$pid")
	[ "$ok" -gt 0 ] || die "$name: no successful registrations (see $work/sipp-$port-$N.log)"
	awk -v n="$name" -v ok="$ok" -v t="$((after - before))" -v hz="$CLK_TCK" \
		'BEGIN { printf "%s %d %.1f\n", n, ok, t / hz * 1e6 / ok }'
}

register() {
	need_pkg sipp sip-tester
	need_pkg kamailio kamailio kamailio-extra-modules
	need_pkg python3 python3
	command -v go >/dev/null 2>&1 || die "go (the version in go.mod) is needed to build taxline"

	work=$(mktemp -d /tmp/sip-load.XXXXXX)
	pids=()
	cleanup() {
		local p
		for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
		for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
		[ "$KEEP" = 1 ] && echo "sip-load: work directory kept: $work" >&2 || rm -rf "$work"
	}
	trap cleanup EXIT

	(cd "$here" && go build -o "$work/taxline" ./cmd/taxline)

	# Users: 1001.. with password demo-<id>, for SIPp, taxline and Kamailio.
	{
		echo SEQUENTIAL
		for i in $(seq 1 "$USERS"); do u=$((1000 + i)); echo "$u;[authentication username=$u password=demo-$u]"; done
	} > "$work/users.csv"
	mkdir -p "$work/kamailio-db"
	printf 'id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n0:location:9\n0:location_attrs:1\n' > "$work/kamailio-db/version"
	{
		echo 'id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) '
		for i in $(seq 1 "$USERS"); do u=$((1000 + i)); echo "$i:$u:127.0.0.1:demo-$u:-:-"; done
	} > "$work/kamailio-db/subscriber"

	local tport kport hport
	tport=$(free_udp_port)
	kport=$(free_udp_port)
	hport=$(free_udp_port)
	cat > "$work/taxline.yaml" <<EOF
# Generated by scripts/sip-load.sh: the demo desk with $USERS agents.
server:
  http: 127.0.0.1:$hport
  sip: 127.0.0.1:$tport
  data: $work/data
  timezone: Asia/Shanghai
calendar:
  files: ["embedded:2026"]
hours:
  hotline:
    weekly:
      - days: [mon, tue, wed, thu, fri, sat]
        from: "08:30"
        to: "21:00"
    holidays: closed
queues:
  - name: etax
    channels: [phone, chat]
    hours: hotline
    chat_hours: always
agents:
$(for i in $(seq 1 "$USERS"); do u=$((1000 + i)); echo "  - {id: \"$u\", name: agent$u, password: demo-$u, queues: [etax]}"; done)
sip:
  trunks:
    - name: load
      sources: [127.0.0.1/32]
      routes: {"*": etax}
EOF
	"$work/taxline" check-config "$work/taxline.yaml" >&2 || die "generated config refused"

	# shellcheck disable=SC2086 # TAXLINE_ENV is a list of NAME=value words
	env $TAXLINE_ENV "$work/taxline" serve -config "$work/taxline.yaml" > "$work/taxline.log" 2>&1 &
	local tpid=$!
	pids+=("$tpid")
	kamailio -f "$here/testdata/kamailio/kamailio.cfg" -DD -E -x tlsf -m 512 -M 16 \
		-l udp:127.0.0.1:"$kport" -A "DBURL=\"text://$work/kamailio-db\"" -A CHILDREN=2 \
		> "$work/kamailio.log" 2>&1 &
	local kpid=$!
	pids+=("$kpid")
	wait_udp "$tport"
	wait_udp "$kport"

	echo "sip-load register: $N registrations at $RATE/s, $USERS users, SIPp 3.6 MD5 digest, CLK_TCK=$CLK_TCK${TAXLINE_ENV:+, taxline with $TAXLINE_ENV}"
	local t k
	t=$(measure taxline "$tpid" "$tport")
	k=$(measure kamailio "$kpid" "$kport")
	kill -0 "$tpid" 2>/dev/null || die "taxline died (see $work/taxline.log)"
	kill -0 "$kpid" 2>/dev/null || die "kamailio died (see $work/kamailio.log)"
	printf '%-10s %12s %22s\n' server registrations "CPU-µs/registration"
	echo "$t" | awk '{printf "%-10s %12d %22.1f\n", $1, $2, $3}'
	echo "$k" | awk '{printf "%-10s %12d %22.1f\n", $1, $2, $3}'
	awk -v a="$(echo "$t" | cut -d' ' -f3)" -v b="$(echo "$k" | cut -d' ' -f3)" \
		'BEGIN { printf "ratio taxline/kamailio: %.2f\n", a / b }'
}

calls() {
	# The call half (SIPp as trunk and as auto-answering agents against
	# taxline's B2BUA, beside Kamailio and rtpengine) lives with the call
	# code, in scripts/call-load.sh. Without it, say so instead of printing
	# numbers that measure nothing.
	if [ -x "$here/scripts/call-load.sh" ]; then
		exec "$here/scripts/call-load.sh" "$@"
	fi
	echo "sip-load calls: no call benchmark in this checkout (scripts/call-load.sh is missing); only 'register' is measured here" >&2
	exit 2
}

case "${1:-}" in
register) register ;;
calls) shift; calls "$@" ;;
*)
	echo "usage: $0 register|calls   (environment: N RATE USERS LIMIT KEEP)" >&2
	exit 2
	;;
esac
