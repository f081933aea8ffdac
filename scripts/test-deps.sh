#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages: system binaries and the
# node packages used by interop tests. Idempotent; quiet when everything is present.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)  # Playwright drives the system browser
# Emoji in page icons render in the e2e screenshots only with a colour emoji font.
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)  # deploy/nginx.conf tests
command -v node >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  (apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null) || {
    echo "could not install ${need[*]}; tests that need them will fail in CI" >&2
  }
fi

# Quiz interop: the real npm socket.io-client (test-only folder, pinned by its lock file).
quiz_interop="$(dirname "$0")/../tests/modules/quiz/interop"
if command -v npm >/dev/null && [ ! -d "$quiz_interop/node_modules/socket.io-client" ]; then
  (cd "$quiz_interop" && npm ci --no-audit --no-fund --loglevel=error) || {
    echo "could not install socket.io-client for the quiz interop test" >&2
  }
fi

# Collab interop + bench: the real npm yjs, y-websocket, y-webrtc, @hocuspocus/server (test-only,
# pinned by the committed package-lock.json; npm ci installs exactly that tree).
collab_interop="$(dirname "$0")/../tests/collab/interop"
if command -v node >/dev/null && command -v npm >/dev/null \
  && [ ! -d "$collab_interop/node_modules/y-webrtc" ]; then
  (cd "$collab_interop" && npm ci --no-audit --no-fund --loglevel=error) || {
    echo "could not install the collab interop npm packages" >&2
  }
fi
