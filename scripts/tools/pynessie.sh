#!/usr/bin/env bash
# pynessie, Nessie's Python client (API v1 only), for the v1 client tests.
#
#   scripts/tools/pynessie.sh      install if missing, print the venv's python on stdout
#
# pynessie ${LAKEHOUSE_PYNESSIE_VERSION:-0.67.0} (its last release) goes into a test-only
# virtual environment, ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/pynessie-venv, apart from
# the project's venv: it needs marshmallow 3 (it passes marshmallow's `default=`, removed in
# marshmallow 4), which the project's own pins must not be held to. Re-running is a no-op
# once installed.
set -euo pipefail

TOOL="pynessie"
# shellcheck source=scripts/tools/_venv.sh
source "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/_venv.sh"

VERSION="${LAKEHOUSE_PYNESSIE_VERSION:-0.67.0}"
VENV="${LAKEHOUSE_PYNESSIE_VENV:-$CACHE/pynessie-venv}"

ensure_venv "$VENV" "pynessie==$VERSION" "marshmallow==3.26.2"
echo "$VENV/bin/python"
