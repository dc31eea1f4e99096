#!/usr/bin/env bash
# `docker compose config` without Docker: validates and resolves a Compose file.
#
#   scripts/tools/compose.sh                build if missing, print the binary's path (last line)
#   scripts/tools/compose.sh path           print the path without building (exit 3 when not built)
#   scripts/tools/compose.sh config ARGS... build if missing, then run it:
#       scripts/tools/compose.sh config -f docker/docker-compose.yml --env-file .env --profile '*'
#
# The binary is our small program in scripts/tools/compose-config (main.go) over
# github.com/compose-spec/compose-go/v2 — the loader `docker compose` itself uses (the
# Compose Specification JSON schema, interpolation, profiles, normalization) — built with
# the Go toolchain from the Go module proxy into
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/tools/bin (modules under .../tools/gomodcache).
# Idempotent: rebuilt only when main.go, go.mod or go.sum change (about a minute on two
# cores the first time; the script prints how long it took). Where the real compose plugin
# works (`docker compose version`), `docker compose -f … config` gives the same verdicts.
set -euo pipefail

HERE="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/compose-config"
CACHE="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}"
CACHE="$(realpath -m -- "$CACHE")"
ROOT="$CACHE/tools"
BIN_DIR="$ROOT/bin"
BIN="$BIN_DIR/compose-config"
STAMP="$BIN_DIR/compose-config.sum"
LOG="$ROOT/compose-config-build.log"

die() {
    echo "compose.sh: error: $*" >&2
    exit 1
}

say() {
    echo "compose.sh: $*" >&2
}

source_sum() {
    cat "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" | sha256sum | cut -d' ' -f1
}

built() {
    [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$(source_sum)" ]]
}

ensure_built() {
    built && return 0
    command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null || die "compose-config is built from source and needs the Go toolchain: https://go.dev/dl"
    mkdir -p "$BIN_DIR"
    say "building compose-config (compose-go) with $(go env GOVERSION) (first run only)"
    local started=$SECONDS sum
    sum="$(source_sum)"
    # GOTOOLCHAIN=local: never download another toolchain; -mod=readonly: go.sum is final.
    if ! (cd "$SRC" && env GOMODCACHE="$ROOT/gomodcache" GOTOOLCHAIN=local \
        GOFLAGS="-modcacherw -buildvcs=false -trimpath -mod=readonly" \
        go build -o "$BIN.tmp" .) >"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "building compose-config failed (log: $LOG)"
    fi
    mv -f "$BIN.tmp" "$BIN"
    echo "$sum" >"$STAMP"
    say "built $BIN in $((SECONDS - started))s"
}

case "${1:-build}" in
    build)
        ensure_built
        echo "$BIN"
        ;;
    path)
        built || { echo "compose.sh: compose-config is not built (or out of date); run scripts/tools/compose.sh" >&2; exit 3; }
        echo "$BIN"
        ;;
    config)
        shift
        ensure_built
        exec "$BIN" "$@" config
        ;;
    -h | --help | help)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        ;;
    *)
        die "unknown command '$1' (build | path | config ARGS...)"
        ;;
esac
