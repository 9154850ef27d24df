#!/usr/bin/env bash
# Chat gateway load benchmark (issue 4): N taxpayer sessions and M agent
# desks on 127.0.0.1, a fixed message rate for a bounded time; prints
# p50/p99 delivery latency both ways, messages/s and server memory per
# session. The server runs in a child process so its memory is measured
# apart from the clients'.
#
#   scripts/chat-load.sh                      # 10,000 sessions, 200 agents, 1,000 msg/s, 30 s
#   scripts/chat-load.sh -agents 500          # every session connected to an agent
#   scripts/chat-load.sh -sessions 2000 -duration 10s -json /tmp/load.json
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(mktemp -d)/chatload"
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./chat/chattest/load
# 10,000 sockets on each side: the program raises RLIMIT_NOFILE to the hard
# limit itself; make sure the hard limit allows it.
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 12000 ]; then
  echo "chat-load: the hard open-file limit ($(ulimit -Hn)) is below 12000; raise it (ulimit -Hn) as root" >&2
  exit 1
fi
exec "$bin" "$@"
