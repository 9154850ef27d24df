#!/usr/bin/env bash
# The whole test suite: installs what the tests need when it is missing,
# then runs the gates (gofmt, go vet, golangci-lint) and every test with the
# race detector, including the end-to-end tests against SIPp, baresip and
# headless Chromium.
#
#   scripts/test.sh          everything (what CI runs)
#   scripts/test.sh -short   the fast suite only (no external programs)
set -euo pipefail
cd "$(dirname "$0")/.."

short=""
[[ "${1:-}" == "-short" ]] && short="-short"

need_pkgs=()
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
command -v baresip >/dev/null 2>&1 || need_pkgs+=(baresip)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || need_pkgs+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_pkgs+=(sox)
command -v unshare >/dev/null 2>&1 || need_pkgs+=(util-linux)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v svwar >/dev/null 2>&1 || need_pkgs+=(sipvicious)
# Chinese glyphs for the pages' screenshots.
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || need_pkgs+=(fonts-wqy-zenhei)
if [[ -z "$short" && ${#need_pkgs[@]} -gt 0 ]]; then
  echo "installing: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
  echo "gofmt wants to change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

# The Linux-only fast paths (raw sockets, epoll) have portable fallbacks;
# keep them compiling.
echo "== go vet (GOOS=darwin)"
GOOS=darwin go vet ./sip/... ./storage/... ./cmd/...

echo "== golangci-lint"
lint="$(go env GOPATH)/bin/golangci-lint"
if [[ ! -x "$lint" ]]; then
  go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
fi
"$lint" run ./...

echo "== go test -race $short"
# The end-to-end packages start real peers; -p 1 keeps two of them from
# competing for the two cores at once.
go test -race $short -count=1 -timeout 25m ./...
