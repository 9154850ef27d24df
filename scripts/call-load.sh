#!/usr/bin/env bash
# SIP call load benchmark: taxline's B2BUA side by side with Kamailio 5.6 (a
# stateful proxy) and rtpengine (userspace RTP relay) in the same run, on
# loopback and free ports, measuring CPU time from /proc.
#
#   scripts/call-load.sh         the full run (a few minutes)
#   scripts/call-load.sh smoke   50 calls at 10/s with audio against taxline only
#
# Peers: SIPp as the trunk (testdata/sipp/load_caller*.xml) and one SIPp UAS
# as every agent's phone (testdata/sipp/load_agent.xml, -rtp_echo, -aa):
# AGENTS agents 2001.. register with MD5 digest (testdata/sipp/register_auth.xml)
# from that UAS's port, with taxline and with Kamailio, so both servers ring
# the same phone. PCMA end to end: nobody transcodes.
#
# Phases of the full run (each server gets a warm-up first, not measured):
#  1 calls    CALLS calls at RATE/s, signalling only (no RTP from the caller),
#             each connected for HOLD ms, to taxline (welcome prompt, queue,
#             ring, answer, recording, BYE both legs) and to Kamailio
#             (testdata/kamailio/proxy.cfg: record-routed tm relay to the
#             agent from usrloc). CPU-µs per successful call.
#  2 media    MEDIA_CALLS calls at MEDIA_RATE/s; the caller waits SETTLE ms
#             (welcome, ring), then sends g711a.pcap (236 packets) that the
#             agent echoes back: to taxline (relays both ways and records),
#             and through Kamailio with rtpengine (proxy.cfg -A WITH_RTPENGINE,
#             userspace forwarding, no recording). CPU-µs per relayed packet:
#             taxline's packets from its own per-leg counts (log lines "sip
#             agent leg closed", rtp_rx + rtp_tx), rtpengine's from its
#             totals (rtpengine-ctl). taxline's figure is given gross (all
#             CPU / packets) and net of phase 1's per-call cost.
#  3 conc     CONC long calls at CONC_RATE/s to taxline, ~34 s each (pcap
#             played four times, 2 s to spare), all CONC up at once for ~20 s; RTP
#             loss = packets the callers sent that did not come back from
#             the agents, counted by taxline per leg (caller→taxline,
#             taxline→agent, agent→taxline), less what the kernel dropped at
#             the agents' SIPp socket (/proc/net/udp), which is SIPp's.
#
# CPU is utime+stime of the server's processes (/proc/PID/stat, the process
# tree for Kamailio) from just before SIPp starts until the server has ended
# every call plus WAIT_AFTER s (Kamailio's tm frees transactions on a 5 s
# timer), less the server's idle CPU over the same wall time (measured for
# IDLE s after the agents registered: timers, OPTIONS keep-alives), divided
# by SIPp's successful calls or by relayed packets. Phase 1 also counts the
# servers' context switches per call (every thread's voluntary and
# involuntary switches from /proc/PID/task/*/status, idle not subtracted):
# on these virtual machines a thread going to sleep and waking costs far
# more than the work it wakes for.
#
# Knobs (environment): CALLS (2000) RATE (200) HOLD (1000) MEDIA_CALLS (300)
# MEDIA_RATE (30) CONC (500) CONC_RATE (50) SETTLE (2000) AGENTS (650)
# WARM (100) WAIT_AFTER (6) IDLE (20, seconds of idle CPU measured first) KEEP=1 keeps the work directory; TAXLINE_ENV
# (extra environment for taxline, e.g. "GOGC=200"); PHASES (default
# "calls media conc"); PROFILE=FILE runs taxline's phone path in-process
# (sip/siptest/load: store, router, gateway, no HTTP) instead of `taxline
# serve` and writes a CPU profile of the whole run to FILE (go tool pprof);
# with it, LOAD_DEBUG=1 logs at DEBUG (RTP send failures among others).
# SIPp and the servers share the machine; on 2 cores keep the rates as they are.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-full}
case "$MODE" in
full) ;;
smoke)
	CALLS=0 MEDIA_CALLS=${MEDIA_CALLS:-50} MEDIA_RATE=${MEDIA_RATE:-10} AGENTS=${AGENTS:-60} WARM=0 IDLE=${IDLE:-5}
	PHASES="media"
	;;
*)
	echo "usage: $0 [full|smoke]   (environment: CALLS RATE HOLD MEDIA_CALLS MEDIA_RATE CONC CONC_RATE SETTLE AGENTS KEEP)" >&2
	exit 2
	;;
esac
CALLS=${CALLS:-2000}
RATE=${RATE:-200}
HOLD=${HOLD:-1000}
MEDIA_CALLS=${MEDIA_CALLS:-300}
MEDIA_RATE=${MEDIA_RATE:-30}
CONC=${CONC:-500}
CONC_RATE=${CONC_RATE:-50}
SETTLE=${SETTLE:-2000}
AGENTS=${AGENTS:-650}
WARM=${WARM:-100}
WAIT_AFTER=${WAIT_AFTER:-6}
IDLE=${IDLE:-20}
KEEP=${KEEP:-0}
TAXLINE_ENV=${TAXLINE_ENV:-}
PHASES=${PHASES:-calls media conc}
PROFILE=${PROFILE:+$(realpath -m "$PROFILE")}
CLK_TCK=$(getconf CLK_TCK)
PCAP=/usr/share/sip-tester/g711a.pcap
PCAP_PACKETS=236 # RTP packets in $PCAP (PCMA, 30 ms each, 7.08 s)
CONC_PLAYS=4     # times testdata/sipp/load_caller_long.xml plays it
sippdir=$here/testdata/sipp

die() { echo "call-load: $*" >&2; exit 1; }
say() { echo "call-load: $*" >&2; }
has_phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }

. "$here/scripts/lib/load.sh"

# free_range N prints the first port of N consecutive UDP ports free on
# 127.0.0.1, below the ephemeral range so nothing else picks them meanwhile.
free_range() {
	python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(50):
    base = random.randrange(10000, 32000 - n, 2)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break
else:
    raise SystemExit("no free port range")
PY
}

# sipp_count LOG WHAT prints SIPp's cumulative count of "Successful call"
# or "Failed call" from its final screen.
sipp_count() {
	awk -F'|' -v w="$2" '$1 ~ w {gsub(/ /, "", $3); v=$3} END {print v+0}' "$1"
}

# run_caller NAME TARGET SCENARIO COUNT RATE PAUSE LIMIT runs the trunk SIPp
# (bounded: -m, -recv_timeout, -timeout) and leaves its output in
# $work/NAME.log.
run_caller() {
	local name=$1 target=$2 sf=$3 count=$4 rate=$5 pause=$6 limit=$7
	sipp "$target" -sf "$sippdir/$sf" -inf "$work/callees.csv" -m "$count" -r "$rate" -l "$limit" \
		-d "$pause" -recv_timeout 10000 -timeout 300s -nostdin -i 127.0.0.1 \
		-p "$(free_port)" -mp "$(free_port)" -trace_err -error_file "$work/$name.err" \
		> "$work/$name.log" 2>&1 || true
	local ok failed
	ok=$(sipp_count "$work/$name.log" "Successful call")
	failed=$(sipp_count "$work/$name.log" "Failed call")
	say "$name: $ok successful, $failed failed (of $count)"
	echo "$ok $failed"
}

# register TARGET NAME registers every agent with TARGET from the agents'
# port.
register() {
	local target=$1 name=$2 ok
	sipp "$target" -sf "$sippdir/register_auth.xml" -inf "$work/users.csv" -m "$AGENTS" -r 200 -l 100 \
		-recv_timeout 5000 -timeout 60s -nostdin -i 127.0.0.1 -p "$aport" > "$work/register-$name.log" 2>&1 || true
	ok=$(sipp_count "$work/register-$name.log" "Successful call")
	[ "$ok" = "$AGENTS" ] || die "$name: $ok of $AGENTS agents registered (see $work/register-$name.log)"
}

# log_since OFFSET prints taxline's log from byte OFFSET on.
log_since() { tail -c +"$(($1 + 1))" "$work/taxline.log"; }
log_size() { stat -c %s "$work/taxline.log"; }
# ended_since OFFSET counts calls taxline ended since OFFSET.
ended_since() { log_since "$1" | grep -c 'msg="sip call ended"' || true; }

# wait_ended OFFSET N waits (up to 30 s) until taxline has ended N calls
# since OFFSET.
wait_ended() {
	local i
	for i in $(seq 1 300); do
		[ "$(ended_since "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	say "taxline ended $(ended_since "$1") of $2 calls within 30 s"
}

# leg_sums OFFSET prints "callerRx callerTx agentRx agentTx" summed over
# the calls taxline ended since OFFSET.
leg_sums() {
	log_since "$1" | awk '
		/msg="sip agent leg closed"/ { ar += val("rtp_rx"); at += val("rtp_tx") }
		/msg="sip call ended"/ { cr += val("rtp_rx"); ct += val("rtp_tx") }
		function val(k,   m) { if (match($0, " " k "=[0-9]+")) return substr($0, RSTART + length(k) + 2, RLENGTH - length(k) - 2) + 0; return 0 }
		END { printf "%d %d %d %d\n", cr, ct, ar, at }'
}

# us A_TICKS B_TICKS N prints (B-A) ticks in µs divided by N.
# mark PID prints "ticks seconds": PID's CPU and the wall clock, now.
mark() { echo "$(cpu_ticks "$1") $(date +%s.%N)"; }

# cpu_us MARK_A MARK_B IDLE prints the CPU-µs between the marks less IDLE
# (ticks per second the server burns doing nothing, measured at the start)
# times the wall time between them.
cpu_us() {
	awk -v a="$1" -v b="$2" -v idle="$3" -v hz="$CLK_TCK" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		printf "%.0f", ((y[1] - x[1]) - idle * (y[2] - x[2])) / hz * 1e6 }'
}

# us MARK_A MARK_B N IDLE prints cpu_us per N (one decimal), n/a if N is 0.
us() {
	local c
	c=$(cpu_us "$1" "$2" "$4")
	awk -v c="$c" -v n="$3" 'BEGIN { if (n > 0) printf "%.1f", c / n; else print "n/a" }'
}

# sock_drops PORT prints the kernel's receive drops (buffer full) at the
# UDP sockets bound to 127.0.0.1:PORT.
sock_drops() {
	awk -v p="$(printf '%04X' "$1")" 'NR > 1 { split($2, a, ":"); if (a[2] == p) d += $NF } END { print d + 0 }' /proc/net/udp
}

# idle_rate A B prints the ticks per second between two marks.
idle_rate() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f", (y[1] - x[1]) / (y[2] - x[2]) }'
}

need_pkg sipp sip-tester
need_pkg python3 python3
if [ "$MODE" = full ]; then
	need_pkg kamailio kamailio kamailio-extra-modules
	need_pkg rtpengine rtpengine-daemon
	need_pkg rtpengine-ctl rtpengine-utils
fi
command -v go >/dev/null 2>&1 || die "go (the version in go.mod) is needed to build taxline"

work=$(mktemp -d /tmp/call-load.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$KEEP" = 1 ]; then say "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$here" && go build -o "$work/taxline" ./cmd/taxline)

# Agents 2001.. with password demo-<id>: SIPp's credentials, taxline's
# agents, Kamailio's subscribers; callees.csv is what the trunk dials.
{
	echo SEQUENTIAL
	for i in $(seq 1 "$AGENTS"); do u=$((2000 + i)); echo "$u;[authentication username=$u password=demo-$u]"; done
} > "$work/users.csv"
{
	echo SEQUENTIAL
	for i in $(seq 1 "$AGENTS"); do echo $((2000 + i)); done
} > "$work/callees.csv"
# A 0.4 s welcome prompt (the built-in one is several seconds long).
python3 - "$work/welcome.wav" <<'PY'
import math, struct, sys, wave
w = wave.open(sys.argv[1], "wb")
w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(3200)))
w.close()
PY

tport=$(free_port)
hport=$(free_port)
aport=$(free_port)
amport=$(free_port)
trtp=$(free_range 4000)
cat > "$work/taxline.yaml" <<EOF
# Generated by scripts/call-load.sh: one queue, $AGENTS agents, always open.
server:
  http: 127.0.0.1:$hport
  sip: 127.0.0.1:$tport
  data: $work/data
  timezone: Asia/Shanghai
calendar:
  files: ["embedded:2026"]
hours:
  open:
    always: true
queues:
  - name: etax
    channels: [phone]
    hours: open
    chat_hours: open
    wrapup: 0s
agents:
$(for i in $(seq 1 "$AGENTS"); do u=$((2000 + i)); echo "  - {id: \"$u\", name: agent$u, password: demo-$u, queues: [etax]}"; done)
phone:
  ring_timeout: 10s
  autopause_after: 0
sip:
  rtp_ports: $trtp-$((trtp + 3999))
  codecs: [PCMA]
  trunks:
    - name: load
      sources: [127.0.0.1/32]
      routes: {"*": etax}
  prompts:
    welcome: $work/welcome.wav
EOF
"$work/taxline" check-config "$work/taxline.yaml" >&2 || die "generated config refused"
server=("$work/taxline" serve -config "$work/taxline.yaml")
if [ -n "$PROFILE" ]; then
	# The same store, router and gateway in one process without HTTP,
	# writing a CPU profile of the whole run when it stops.
	(cd "$here" && go build -o "$work/load" ./sip/siptest/load)
	server=("$work/load" -config "$work/taxline.yaml" -cpuprofile "$PROFILE")
	[ "${LOAD_DEBUG:-0}" = 1 ] && server+=(-debug)
fi
# shellcheck disable=SC2086 # TAXLINE_ENV is a list of NAME=value words
env $TAXLINE_ENV "${server[@]}" > "$work/taxline.log" 2>&1 &
tpid=$!
pids+=("$tpid")
wait_udp "$tport"
register "127.0.0.1:$tport" taxline

if [ "$MODE" = full ]; then
	mkdir -p "$work/kamailio-db"
	printf 'id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n0:location:9\n0:location_attrs:1\n' > "$work/kamailio-db/version"
	{
		echo 'id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) '
		for i in $(seq 1 "$AGENTS"); do u=$((2000 + i)); echo "$i:$u:127.0.0.1:demo-$u:-:-"; done
	} > "$work/kamailio-db/subscriber"
	kport=$(free_port)
	kport2=$(free_port)
	ngport=$(free_port)
	cliport=$(free_port)
	rrtp=$(free_range 4000)
	kamailio -f "$here/testdata/kamailio/proxy.cfg" -DD -E -x tlsf -m 1024 -M 16 \
		-l udp:127.0.0.1:"$kport" -A "DBURL=\"text://$work/kamailio-db\"" -A CHILDREN=2 \
		> "$work/kamailio.log" 2>&1 &
	kpid=$!
	pids+=("$kpid")
	rtpengine --foreground --log-stderr --log-level=4 --table=-1 --interface=127.0.0.1 \
		--listen-ng=127.0.0.1:"$ngport" --listen-cli=127.0.0.1:"$cliport" \
		--port-min="$rrtp" --port-max=$((rrtp + 3999)) --num-threads=2 --delete-delay=0 \
		--pidfile="$work/rtpengine.pid" > "$work/rtpengine.log" 2>&1 &
	rpid=$!
	pids+=("$rpid")
	kamailio -f "$here/testdata/kamailio/proxy.cfg" -DD -E -x tlsf -m 1024 -M 16 \
		-l udp:127.0.0.1:"$kport2" -A "DBURL=\"text://$work/kamailio-db\"" -A CHILDREN=2 \
		-A WITH_RTPENGINE -A "RTPENGINE=\"udp:127.0.0.1:$ngport\"" \
		> "$work/kamailio-rtpengine.log" 2>&1 &
	k2pid=$!
	pids+=("$k2pid")
	wait_udp "$kport"
	wait_udp "$kport2"
	wait_udp "$ngport"
	register "127.0.0.1:$kport" kamailio
	register "127.0.0.1:$kport2" kamailio-rtpengine
fi

# Every agent's phone: one SIPp UAS on the port they registered from.
sipp -sf "$sippdir/load_agent.xml" -p "$aport" -mp "$amport" -rtp_echo -aa -i 127.0.0.1 \
	-recv_timeout 60000 -timeout 1800s -nostdin > "$work/agents.log" 2>&1 &
pids+=("$!")
wait_udp "$aport"

# rtp_relayed prints rtpengine's count of relayed packets so far.
rtp_relayed() {
	rtpengine-ctl -ip 127.0.0.1 -port "$cliport" list totals 2>/dev/null |
		awk -F: '/[Tt]otal relayed packets/ && !/user|kernel/ {gsub(/ /, "", $2); print $2 + 0; exit}'
}

echo "call-load $MODE: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), CLK_TCK=$CLK_TCK, SIPp $(sipp -v 2>&1 | awk '/SIPp v/ {print $2; exit}')${TAXLINE_ENV:+, taxline with $TAXLINE_ENV}"
[ "$MODE" = full ] && echo "  $(kamailio -v 2>&1 | head -1); rtpengine $(rtpengine --version 2>&1 | awk '{print $2}') userspace"

call_us=n/a kcall_us=n/a call_raw=n/a kcall_raw=n/a
tpkt_gross=n/a tpkt_net=n/a rpkt_us=n/a rpkt_raw=n/a

# Idle CPU: what each server burns with agents registered and no calls
# (timers, keep-alives), subtracted from every measured window.
idle_t=0 idle_k=0 idle_k2=0 idle_r=0
if [ "$IDLE" -gt 0 ]; then
	a=$(mark "$tpid")
	[ "$MODE" = full ] && { ka=$(mark "$kpid"); k2a=$(mark "$k2pid"); ra=$(mark "$rpid"); }
	sleep "$IDLE"
	idle_t=$(idle_rate "$a" "$(mark "$tpid")")
	[ "$MODE" = full ] && { idle_k=$(idle_rate "$ka" "$(mark "$kpid")"); idle_k2=$(idle_rate "$k2a" "$(mark "$k2pid")"); idle_r=$(idle_rate "$ra" "$(mark "$rpid")"); }
	echo "  idle CPU over ${IDLE} s, ticks/s (subtracted): taxline $idle_t, kamailio $idle_k, kamailio+rtpengine $idle_k2, rtpengine $idle_r"
fi
t1ok=0 t1fail=0 k1ok=0 k1fail=0

# ---- phase 1: CPU per call, signalling only ----
if has_phase calls && [ "$CALLS" -gt 0 ]; then
	if [ "$WARM" -gt 0 ]; then
		off=$(log_size)
		run_caller warm-taxline "127.0.0.1:$tport" load_caller.xml "$WARM" 50 "$HOLD" 1000 >/dev/null
		wait_ended "$off" "$WARM"
		run_caller warm-kamailio "127.0.0.1:$kport" load_caller.xml "$WARM" 50 "$HOLD" 1000 >/dev/null
		sleep "$WAIT_AFTER"
	fi
	off=$(log_size)
	a=$(mark "$tpid") csa=$(ctx_switches "$tpid")
	read -r t1ok t1fail < <(run_caller calls-taxline "127.0.0.1:$tport" load_caller.xml "$CALLS" "$RATE" "$HOLD" 2000)
	wait_ended "$off" "$CALLS"
	sleep "$WAIT_AFTER"
	b=$(mark "$tpid") csb=$(ctx_switches "$tpid")
	call_us=$(us "$a" "$b" "$t1ok" "$idle_t")
	call_raw=$(us "$a" "$b" "$t1ok" 0)
	call_cs=$(awk -v d=$((csb - csa)) -v n="$t1ok" 'BEGIN { if (n > 0) printf "%.1f", d / n; else print "n/a" }')
	a=$(mark "$kpid") csa=$(ctx_switches "$kpid")
	read -r k1ok k1fail < <(run_caller calls-kamailio "127.0.0.1:$kport" load_caller.xml "$CALLS" "$RATE" "$HOLD" 2000)
	sleep "$WAIT_AFTER"
	b=$(mark "$kpid") csb=$(ctx_switches "$kpid")
	kcall_us=$(us "$a" "$b" "$k1ok" "$idle_k")
	kcall_raw=$(us "$a" "$b" "$k1ok" 0)
	kcall_cs=$(awk -v d=$((csb - csa)) -v n="$k1ok" 'BEGIN { if (n > 0) printf "%.1f", d / n; else print "n/a" }')
fi

# ---- phase 2: CPU per relayed packet ----
t2ok=0 t2fail=0 r2ok=0 r2fail=0 trelayed=0 rrelayed=0
if has_phase media && [ "$MEDIA_CALLS" -gt 0 ]; then
	if [ "$WARM" -gt 0 ]; then
		off=$(log_size)
		run_caller warm-media-taxline "127.0.0.1:$tport" load_caller_rtp.xml "$((WARM / 2))" 25 "$SETTLE" 1000 >/dev/null
		wait_ended "$off" "$((WARM / 2))"
		run_caller warm-media-rtpengine "127.0.0.1:$kport2" load_caller_rtp.xml "$((WARM / 2))" 25 "$SETTLE" 1000 >/dev/null
		sleep "$WAIT_AFTER"
	fi
	off=$(log_size)
	da=$(sock_drops "$amport")
	a=$(mark "$tpid")
	read -r t2ok t2fail < <(run_caller media-taxline "127.0.0.1:$tport" load_caller_rtp.xml "$MEDIA_CALLS" "$MEDIA_RATE" "$SETTLE" 1000)
	wait_ended "$off" "$MEDIA_CALLS"
	sleep "$WAIT_AFTER"
	b=$(mark "$tpid")
	read -r cr ct ar at < <(leg_sums "$off")
	trelayed=$((ar + at))
	tpkt_gross=$(us "$a" "$b" "$trelayed" "$idle_t")
	if [ "$call_us" != n/a ]; then
		tpkt_net=$(awk -v c="$(cpu_us "$a" "$b" "$idle_t")" -v per="$call_us" -v n="$t2ok" -v p="$trelayed" \
			'BEGIN { if (p > 0) printf "%.1f", (c - per * n) / p; else print "n/a" }')
	fi
	say "media-taxline: caller legs rx $cr tx $ct, agent legs rx $ar tx $at (expected $((t2ok * PCAP_PACKETS)) each way); $(($(sock_drops "$amport") - da)) dropped by the kernel at the agents' SIPp socket"
	if [ "$MODE" = full ]; then
		a=$(mark "$rpid")
		ka=$(mark "$k2pid")
		ra=$(rtp_relayed)
		read -r r2ok r2fail < <(run_caller media-rtpengine "127.0.0.1:$kport2" load_caller_rtp.xml "$MEDIA_CALLS" "$MEDIA_RATE" "$SETTLE" 1000)
		sleep "$WAIT_AFTER"
		b=$(mark "$rpid")
		kb=$(mark "$k2pid")
		rb=$(rtp_relayed)
		rrelayed=$((${rb:-0} - ${ra:-0}))
		rpkt_us=$(us "$a" "$b" "$rrelayed" "$idle_r")
		rpkt_raw=$(us "$a" "$b" "$rrelayed" 0)
		say "media-rtpengine: rtpengine relayed $rrelayed packets (expected $((r2ok * PCAP_PACKETS * 2))); kamailio with rtpengine $(us "$ka" "$kb" "$r2ok" "$idle_k2") CPU-µs/call"
	fi
fi

# ---- phase 3: CONC concurrent recorded calls, RTP loss ----
c3ok=0 c3fail=0 peak=0 loss=n/a
if has_phase conc && [ "$CONC" -gt 0 ]; then
	off=$(log_size)
	da=$(sock_drops "$amport")
	run_caller conc-taxline "127.0.0.1:$tport" load_caller_long.xml "$CONC" "$CONC_RATE" "$((SETTLE + 1000))" "$CONC" > "$work/conc.result" &
	cpid=$!
	# All CONC calls are up from CONC/CONC_RATE + SETTLE s until ~30 s later.
	sleep "$(awk -v n="$CONC" -v r="$CONC_RATE" -v s="$SETTLE" 'BEGIN { printf "%.1f", n / r + s / 1000 + 8 }')"
	peak=$(($(log_since "$off" | grep -c 'msg="sip call connected"' || true) - $(ended_since "$off")))
	wait "$cpid" || true
	read -r c3ok c3fail < "$work/conc.result"
	wait_ended "$off" "$CONC"
	read -r cr ct ar at < <(leg_sums "$off")
	sent=$((c3ok * PCAP_PACKETS * CONC_PLAYS))
	adrops=$(($(sock_drops "$amport") - da))
	# Lost on the way: callers → taxline, not relayed, taxline → agents →
	# back; the agents' SIPp socket's own kernel drops are not taxline's.
	loss=$((sent - ar - adrops))
	say "conc-taxline: $peak calls connected at once; callers sent $sent, taxline got $cr from callers, sent $at to agents, got $ar back; the kernel dropped $adrops at the agents' SIPp socket"
fi

echo
echo "phase        server      calls ok  failed   CPU-µs"
[ "$CALLS" -gt 0 ] && has_phase calls && {
	printf '%-12s %-10s %9d %7d %8s /call (%s before idle; %s context switches/call; signalling, answered, recorded)\n' calls taxline "$t1ok" "$t1fail" "$call_us" "$call_raw" "$call_cs"
	printf '%-12s %-10s %9d %7d %8s /call (%s before idle; %s context switches/call; stateful proxy, record-routed)\n' calls kamailio "$k1ok" "$k1fail" "$kcall_us" "$kcall_raw" "$kcall_cs"
}
has_phase media && {
	printf '%-12s %-10s %9d %7d %8s /packet gross, %s net of per-call (%d packets relayed, recorded)\n' media taxline "$t2ok" "$t2fail" "$tpkt_gross" "$tpkt_net" "$trelayed"
	[ "$MODE" = full ] && printf '%-12s %-10s %9d %7d %8s /packet (%s before idle; %d packets relayed, userspace, not recorded)\n' media rtpengine "$r2ok" "$r2fail" "$rpkt_us" "$rpkt_raw" "$rrelayed"
}
has_phase conc && [ "$CONC" -gt 0 ] && printf '%-12s %-10s %9d %7d  %d at once, %s packets lost by taxline of %d (%s more dropped at the agents'"'"' SIPp socket)\n' conc taxline "$c3ok" "$c3fail" "$peak" "$loss" "$((c3ok * PCAP_PACKETS * CONC_PLAYS))" "${adrops:-0}"
if [ "$MODE" = full ]; then
	awk -v t="$call_us" -v k="$kcall_us" -v tg="$tpkt_gross" -v tn="$tpkt_net" -v r="$rpkt_us" 'BEGIN {
		if (t != "n/a" && k != "n/a" && k > 0) printf "ratio taxline/kamailio per call: %.2f (target <= 2)\n", t / k
		if (tg != "n/a" && r != "n/a" && r > 0) printf "ratio taxline/rtpengine per packet: %.2f gross, %s net (target <= 1)\n", tg / r, (tn != "n/a" ? sprintf("%.2f", tn / r) : "n/a")
	}'
fi

# Verdict: failed calls, and the smoke's packet accounting, are errors.
status=0
[ "$t1fail" = 0 ] && [ "$k1fail" = 0 ] && [ "$t2fail" = 0 ] && [ "$c3fail" = 0 ] || status=1
if has_phase media && [ "$MEDIA_CALLS" -gt 0 ]; then
	[ "$t2ok" = "$MEDIA_CALLS" ] || status=1
	[ "$trelayed" -ge $((t2ok * PCAP_PACKETS * 2 * 99 / 100)) ] || { say "taxline relayed $trelayed packets, fewer than 99% of $((t2ok * PCAP_PACKETS * 2))"; status=1; }
fi
if has_phase conc && [ "$loss" != n/a ] && [ "$loss" != 0 ]; then status=1; fi
kill -0 "$tpid" 2>/dev/null || { say "taxline died (see $work/taxline.log)"; status=1; }
[ "$status" = 0 ] || { KEEP=1; say "FAILED"; }
exit "$status"
