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

TOOL="helm"
MODULE="helm.sh/helm/v3"
VERSION="${LAKEHOUSE_HELM_VERSION:-v3.22.0}"
# shellcheck source=scripts/tools/_go_tool.sh
source "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/_go_tool.sh"

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
