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

TOOL="promtool"
MODULE="github.com/prometheus/prometheus"
VERSION="${LAKEHOUSE_PROMTOOL_VERSION:-v0.316.0}"
# Prometheus's own build tags: leave out every service discovery but DNS (the one
# monitoring/prometheus/prometheus.yml uses), which cuts the build to a fraction
TAGS="remove_all_sd,enable_dns_sd"
REPO="$(cd "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.." && pwd)"
# shellcheck source=scripts/tools/_go_tool.sh
source "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/_go_tool.sh"

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
