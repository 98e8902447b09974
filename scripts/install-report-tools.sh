#!/usr/bin/env bash
# Installs what the report tests check their output with, each only when missing (idempotent):
# - Debian's chromium, to render the HTML report headless (EndToEndTests.ReportRenderTests);
# - the FinOps Foundation's FOCUS validator (PyPI focus-validator) in a virtual environment outside the
#   repository, to validate `report --format focus` (EndToEndTests.FocusExportTests).
# The tests find them at the paths below (TOKENMETER_FOCUS_VALIDATOR overrides the validator's venv).
set -euo pipefail

venv="${TOKENMETER_FOCUS_VALIDATOR:-/var/cache/tokenmeter-ci/focus-validator}"

if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x "$venv/bin/focus-validator" ]; then
    # focus-validator 2.x needs Python >= 3.12: Debian 12's python3 is 3.11, so take pyenv's 3.12 when it
    # is there (or any python3.12 on PATH).
    py=""
    for c in python3.12 python3.13 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 "$HOME"/.pyenv/versions/3.13*/bin/python3.13; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            py="$(command -v "$c")"; break
        fi
    done
    if [ -z "$py" ]; then
        echo "install-report-tools: no Python >= 3.12 found; the FOCUS validator test will skip" >&2
        exit 0
    fi
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'focus-validator==2.2.1'
    # Its pyarrow needs numpy 2, which the validator's own pins hold back: installed after it.
    "$venv/bin/pip" install -q --disable-pip-version-check 'numpy>=2'
fi
