# Shell helpers shared by the load scripts (scripts/sip-load.sh,
# scripts/call-load.sh). Source it after defining die MESSAGE.

# need_pkg BINARY PACKAGE... installs the packages with apt-get only when
# BINARY is missing.
need_pkg() {
	local bin=$1; shift
	command -v "$bin" >/dev/null 2>&1 && return 0
	[ "$(id -u)" = 0 ] || die "$bin missing; install: apt-get install -y $*"
	echo "installing $*" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; }
}

# tree_pids PID prints PID and all its descendants.
tree_pids() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}

# ctx_switches PID prints the context switches (voluntary and not) of
# every thread in PID's tree so far; threads that ended are not counted.
ctx_switches() {
	local p
	for p in $(tree_pids "$1"); do cat /proc/"$p"/task/*/status 2>/dev/null; done |
		awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
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

# wait_udp PORT waits (up to 10 s) until a socket listens on udp PORT.
wait_udp() {
	local port=$1 i
	for i in $(seq 1 100); do
		# Filtered by ss itself: with grep -q on a long listing, ss dies of
		# SIGPIPE and pipefail takes the match for a failure.
		[ -n "$(ss -Hlun "sport = :$port")" ] && return 0
		sleep 0.1
	done
	die "nothing listens on udp 127.0.0.1:$port"
}

# free_port prints a port on 127.0.0.1 that is free right now for UDP and
# for TCP (taxline listens on both; loopback TCP ports in TIME_WAIT are
# common on a busy machine).
free_port() {
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
