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

VERSION="${LAKEHOUSE_PYNESSIE_VERSION:-0.67.0}"
CACHE="$(realpath -m -- "${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}")"
VENV="${LAKEHOUSE_PYNESSIE_VENV:-$CACHE/pynessie-venv}"
PY="$VENV/bin/python"
STAMP="$VENV/.lakehouse-installed"
WANT="pynessie==$VERSION marshmallow==3.26.2"

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "pynessie.sh: installing $WANT into $VENV" >&2
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$PY" -m pip install -q --disable-pip-version-check $WANT >&2
    echo "$WANT" >"$STAMP"
fi
echo "$PY"
