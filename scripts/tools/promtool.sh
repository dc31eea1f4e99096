#!/usr/bin/env bash
# promtool (Prometheus), built from its Go module, for checking monitoring/ (tests/monitoring).
#
#   scripts/tools/promtool.sh            build if missing, print the binary's path (last line)
#   scripts/tools/promtool.sh path       print the path without building (exit 3 when not built)
#   scripts/tools/promtool.sh check      build if missing, then on monitoring/prometheus:
#                                        `promtool check rules`, `check config`, `test rules`
#
# No prebuilt binary is downloaded: `go install github.com/prometheus/prometheus/cmd/promtool@$VERSION`
# into ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/tools/bin (modules under .../tools/gomodcache).
# The Go module's v0.316.0 is Prometheus 3.16.0. Idempotent: a second run with the same
# version prints the path at once. The first build takes minutes on two cores.
set -euo pipefail

MODULE="github.com/prometheus/prometheus"
VERSION="${LAKEHOUSE_PROMTOOL_VERSION:-v0.316.0}"
CACHE="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}"
CACHE="$(realpath -m -- "$CACHE")"
ROOT="$CACHE/tools"
BIN_DIR="$ROOT/bin"
BIN="$BIN_DIR/promtool"
STAMP="$BIN_DIR/promtool.version"
LOG="$ROOT/promtool-build.log"
REPO="$(cd "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd)"

die() {
    echo "promtool.sh: error: $*" >&2
    exit 1
}

say() {
    echo "promtool.sh: $*" >&2
}

built() {
    [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" ]]
}

ensure_built() {
    built && return 0
    command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null || die "promtool is built from source and needs the Go toolchain: https://go.dev/dl"
    mkdir -p "$BIN_DIR"
    say "building $MODULE/cmd/promtool@$VERSION with $(go env GOVERSION) (first run only; takes minutes)"
    local started=$SECONDS
    # GOTOOLCHAIN=local: never download another toolchain. -modcacherw: the module cache
    # stays deletable. -trimpath: no path of this machine inside the binary.
    if ! env GOBIN="$BIN_DIR" GOMODCACHE="$ROOT/gomodcache" GOTOOLCHAIN=local \
        GOFLAGS="-modcacherw -buildvcs=false -trimpath" \
        go install "$MODULE/cmd/promtool@$VERSION" >"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "go install $MODULE/cmd/promtool@$VERSION failed (log: $LOG)"
    fi
    echo "$VERSION" >"$STAMP"
    say "built $BIN in $((SECONDS - started))s"
}

case "${1:-build}" in
    build | start)
        ensure_built
        echo "$BIN"
        ;;
    path)
        built || { echo "promtool.sh: promtool $VERSION is not built; run scripts/tools/promtool.sh" >&2; exit 3; }
        echo "$BIN"
        ;;
    check)
        ensure_built
        "$BIN" check rules "$REPO"/monitoring/prometheus/rules/*.yml
        "$BIN" check config "$REPO"/monitoring/prometheus/prometheus.yml
        "$BIN" test rules "$REPO"/monitoring/prometheus/tests/*.yml
        ;;
    -h | --help | help)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        ;;
    *)
        die "unknown command '$1' (build | path | check)"
        ;;
esac
