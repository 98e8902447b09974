#!/usr/bin/env bash
# Stored instance properties per type declared in Sources/TokenmeterDaemon, largest first: COUNT, TYPE, names.
# The counting (and the limit of 15 it enforces in CI) is StoredPropertyCountTests, in
# Tests/TokenmeterDaemonTests; this prints its table. Exit status: the test's (1 when a type is over).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests >/dev/null
status=0
output=$(TOKENMETER_LIST_STORED_PROPERTIES=1 swift test --skip-build \
    --filter StoredPropertyCountTests.noTypeOfTheDaemonHoldsMoreThanFifteen 2>&1) || status=$?
grep -E $'^[0-9]+\t|✘' <<<"$output" || true
exit "$status"
