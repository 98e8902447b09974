#!/usr/bin/env bash
# The whole test suite, as the README gives it: the fast tests in parallel, then the end-to-end scenarios
# (real broker and daemon processes, each blocking a test thread for up to minutes) one at a time in each
# of two shards side by side (scripts/end-to-end.sh says why and how they are split).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build --skip EndToEndTests
scripts/end-to-end.sh
