# Shared by scripts/tools/{helm,promtool}.sh: build one command of a Go module from the Go
# module proxy into ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/tools/bin, once per version.
# Sourced, not run. The sourcing script sets TOOL (the command's name), MODULE and VERSION
# (and TAGS, Go build tags, if any) first; this defines ROOT, BIN_DIR, BIN, STAMP, LOG, die,
# say, built and ensure_built.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    echo "_go_tool.sh: error: this file is sourced by scripts/tools/*.sh, not run" >&2
    exit 1
fi

CACHE="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}"
CACHE="$(realpath -m -- "$CACHE")"
ROOT="$CACHE/tools"
BIN_DIR="$ROOT/bin"
BIN="$BIN_DIR/$TOOL"
STAMP="$BIN_DIR/$TOOL.version"
LOG="$ROOT/$TOOL-build.log"

die() {
    echo "$TOOL.sh: error: $*" >&2
    exit 1
}

say() {
    echo "$TOOL.sh: $*" >&2
}

built() {
    [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" ]]
}

ensure_built() {
    built && return 0
    command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null || die "$TOOL is built from source and needs the Go toolchain: https://go.dev/dl"
    mkdir -p "$BIN_DIR"
    say "building $MODULE/cmd/$TOOL@$VERSION with $(go env GOVERSION) (first run only; takes minutes)"
    local started=$SECONDS
    # GOTOOLCHAIN=local: never download another toolchain. -modcacherw: the module cache
    # stays deletable. -trimpath: no path of this machine inside the binary.
    if ! env GOBIN="$BIN_DIR" GOMODCACHE="$ROOT/gomodcache" GOTOOLCHAIN=local \
        GOFLAGS="-modcacherw -buildvcs=false -trimpath" \
        go install -tags="${TAGS:-}" "$MODULE/cmd/$TOOL@$VERSION" >"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "go install $MODULE/cmd/$TOOL@$VERSION failed (log: $LOG)"
    fi
    echo "$VERSION" >"$STAMP"
    say "built $BIN in $((SECONDS - started))s"
}
