#!/usr/bin/env bash
# The whole test suite, as the README gives it: the fast tests in parallel, then the end-to-end scenarios
# (real broker and daemon processes, each blocking a test thread for up to minutes) one at a time, so that
# they neither starve the other tests of Swift Testing's small thread pool nor compete for the two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build --skip EndToEndTests
swift test --skip-build --filter EndToEndTests --no-parallel
