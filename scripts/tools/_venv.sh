# Shared by scripts/tools/{pynessie,duckdb,spark35}.sh: a test-only virtual environment in
# ${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}, apart from the project's .venv, holding pinned
# packages whose own pins the project must not be held to. Sourced, not run. The sourcing
# script sets TOOL (its name, for messages) first; this defines CACHE, die, say and
# ensure_venv. Messages go to stderr: the scripts print only a path on stdout.
#
#   ensure_venv VENV SPEC...   create VENV (python3 -m venv) and pip install the SPECs into
#                              it, unless VENV/.lakehouse-installed already names exactly
#                              these SPECs (then a no-op); the stamp is written last, so an
#                              interrupted install is redone on the next run

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    echo "_venv.sh: error: this file is sourced by scripts/tools/*.sh, not run" >&2
    exit 2
fi

CACHE="$(realpath -m -- "${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}")"

die() {
    echo "${TOOL:?set TOOL before sourcing _venv.sh}.sh: error: $*" >&2
    exit 1
}

say() {
    echo "${TOOL:?set TOOL before sourcing _venv.sh}.sh: $*" >&2
}

ensure_venv() {
    local venv="$1" stamp want
    shift
    stamp="$venv/.lakehouse-installed"
    want="$*"
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
    say "installing $want into $venv"
    python3 -m venv "$venv" || die "python3 -m venv $venv failed"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" >&2 \
        || die "pip install $want into $venv failed"
    echo "$want" >"$stamp"
}
