#!/usr/bin/env bash
# Helm 3, built from its Go module, for rendering and linting helm/ (tests/deploy).
#
#   scripts/tools/helm.sh            build if missing, print the binary's path (last line)
#   scripts/tools/helm.sh path       print the path without building (exit 3 when not built)
#   scripts/tools/helm.sh version    build if missing, run `helm version`
#
# No prebuilt binary is downloaded: `go install helm.sh/helm/v3/cmd/helm@$VERSION` into
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/tools/bin (modules under .../tools/gomodcache).
# Idempotent: a second run with the same version prints the path at once. The first build
# takes a few minutes on two cores (the script prints how long it took).
# Helm's own state (repositories, cache) is not needed for rendering a local chart; the
# tests point HELM_CACHE_HOME/HELM_CONFIG_HOME/HELM_DATA_HOME at temporary folders.
set -euo pipefail

MODULE="helm.sh/helm/v3"
VERSION="${LAKEHOUSE_HELM_VERSION:-v3.22.0}"
CACHE="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}"
CACHE="$(realpath -m -- "$CACHE")"
ROOT="$CACHE/tools"
BIN_DIR="$ROOT/bin"
BIN="$BIN_DIR/helm"
STAMP="$BIN_DIR/helm.version"
LOG="$ROOT/helm-build.log"

die() {
    echo "helm.sh: error: $*" >&2
    exit 1
}

say() {
    echo "helm.sh: $*" >&2
}

built() {
    [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" ]]
}

ensure_built() {
    built && return 0
    command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null || die "helm is built from source and needs the Go toolchain: https://go.dev/dl"
    mkdir -p "$BIN_DIR"
    say "building $MODULE/cmd/helm@$VERSION with $(go env GOVERSION) (first run only; takes minutes)"
    local started=$SECONDS
    # GOTOOLCHAIN=local: never download another toolchain. -modcacherw: the module cache
    # stays deletable. -trimpath: no path of this machine inside the binary.
    if ! env GOBIN="$BIN_DIR" GOMODCACHE="$ROOT/gomodcache" GOTOOLCHAIN=local \
        GOFLAGS="-modcacherw -buildvcs=false -trimpath" \
        go install "$MODULE/cmd/helm@$VERSION" >"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "go install $MODULE/cmd/helm@$VERSION failed (log: $LOG)"
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
        built || { echo "helm.sh: helm $VERSION is not built; run scripts/tools/helm.sh" >&2; exit 3; }
        echo "$BIN"
        ;;
    version)
        ensure_built
        "$BIN" version --short
        ;;
    -h | --help | help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        ;;
    *)
        die "unknown command '$1' (build | path | version)"
        ;;
esac
