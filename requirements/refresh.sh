#!/usr/bin/env bash
# Rewrites the lock files from pyproject.toml with the newest releases its ranges allow, for every
# platform and Python version it supports, each file pinned with its hashes. Run it once the canary
# (.ci/canary) passes on those releases, then run .ci/run, and commit the lock with the result.
set -euo pipefail
cd "$(dirname "$0")/.."
lock() {
  uv pip compile --quiet pyproject.toml requirements/weights.in --universal --generate-hashes --upgrade \
    --excludes requirements/excludes.txt --custom-compile-command requirements/refresh.sh "$@"
}
lock -o requirements/service.txt
lock --extra dev -o requirements/dev.txt
