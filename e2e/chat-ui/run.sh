#!/usr/bin/env bash
# End-to-end check with LangChain's Agent Chat UI (outside CI): `make chat-ui-e2e`.
#
# Given a checkout of the UI (AGENT_CHAT_UI_DIR, default /work/chatui-src), this script
#   1. patches the UI's next/font/google import (it downloads fonts at build time) to a
#      system font: a build-time patch of the checkout, never part of this repository;
#   2. installs the UI's dependencies from its lockfile (pnpm, at the version its
#      package.json names, through npx) and builds it once (`next build`; later runs reuse
#      the build until the UI's sources change);
#   3. starts agent-server (`python -m src.web`, in-memory persistence, offline model) and the
#      UI (`next start`) on free ports;
#   4. runs drive.mjs (playwright-core on Debian's Chromium): two turns and a reload;
#   5. stops both servers.
#
# Settings (environment):
#   AGENT_CHAT_UI_DIR  the UI checkout (default /work/chatui-src)
#   CHAT_UI_MODE       cross-origin (default): the browser calls agent-server directly, which
#                      needs CORS; same-origin: the browser calls the UI's own /api route
#                      (langgraph-nextjs-api-passthrough), which forwards to agent-server
#   CHAT_UI_SERVE      start (default): next build + next start; dev: next dev (no build)
#   CHAT_UI_REBUILD=1  build again even if the UI's sources have not changed
#   CHROMIUM           Chromium binary (default /usr/bin/chromium; apt-get install chromium)
#   MODEL              the server's model (default offline:deterministic)
# Screenshots, report.txt and the two servers' logs go to e2e/chat-ui/out/ (git-ignored).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UI_DIR=${AGENT_CHAT_UI_DIR:-/work/chatui-src}
MODE=${CHAT_UI_MODE:-cross-origin}
SERVE=${CHAT_UI_SERVE:-start}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
OUT=$HERE/out
export NEXT_TELEMETRY_DISABLED=1

say() { printf '\n== %s\n' "$*"; }
die() { printf 'chat-ui e2e: %s\n' "$*" >&2; exit 2; }

[ -f "$UI_DIR/package.json" ] || die "no Agent Chat UI checkout at $UI_DIR (set AGENT_CHAT_UI_DIR)"
[ -x "$CHROMIUM" ] || die "no Chromium at $CHROMIUM (apt-get install -y chromium, or set CHROMIUM)"
[ -x "$PYTHON" ] || die "no $PYTHON (run: make .venv/.installed)"
command -v node >/dev/null || die "node is not installed"
case $MODE in cross-origin|same-origin) ;; *) die "CHAT_UI_MODE must be cross-origin or same-origin" ;; esac
case $SERVE in start|dev) ;; *) die "CHAT_UI_SERVE must be start or dev" ;; esac

rm -rf "$OUT"
mkdir -p "$OUT"

say "font patch (next/font/google cannot download fonts here)"
# `import { Inter } from "next/font/google";` becomes a stand-in returning a system-font class.
# The stand-in uses its argument so the UI's lint rules (run by next build) stay quiet.
mapfile -t font_files < <(grep -rlE 'from "next/font/google"' "$UI_DIR/src" || true)
for file in "${font_files[@]}"; do
  sed -E -i 's#^import \{ *([A-Za-z_][A-Za-z0-9_]*) *\} from "next/font/google";#const \1 = (options: object) => ({ className: options ? "font-sans" : "" }); // agent-server e2e: system font instead of next/font/google#' "$file"
  grep -q 'from "next/font/google"' "$file" && die "could not patch the next/font/google import in $file"
  echo "patched $file"
done
[ ${#font_files[@]} -gt 0 ] || echo "nothing to patch"

say "UI dependencies"
cd "$UI_DIR"
if [ -f pnpm-lock.yaml ]; then
  # packageManager is "pnpm@X.Y.Z" in the UI's package.json; run that pnpm through npx.
  PNPM_VERSION=$(node -p 'const pm = require("./package.json").packageManager || ""; pm.startsWith("pnpm@") ? pm.slice(5).split("+")[0] : "10"')
  PM=(npx -y "pnpm@$PNPM_VERSION")
  if [ ! -f node_modules/.modules.yaml ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ]; then
    CI=true "${PM[@]}" install --frozen-lockfile
  else
    echo "node_modules is up to date with pnpm-lock.yaml"
  fi
else
  PM=(npm)
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci; fi
fi

if [ "$SERVE" = start ]; then
  say "UI build"
  if [ "${CHAT_UI_REBUILD:-0}" = 1 ] || [ ! -f .next/BUILD_ID ] ||
    [ -n "$(find src package.json next.config.* -newer .next/BUILD_ID -print -quit 2>/dev/null)" ]; then
    if ! node_modules/.bin/next build 2>&1 | tee "$OUT/ui-build.log"; then
      die "next build failed (see $OUT/ui-build.log); CHAT_UI_SERVE=dev runs next dev instead"
    fi
  else
    echo "reusing the build in $UI_DIR/.next (CHAT_UI_REBUILD=1 builds again)"
  fi
fi

say "driver dependencies"
cd "$HERE"
[ -f node_modules/playwright-core/package.json ] || npm ci --no-audit --no-fund

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # url seconds pid name
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { tail -n 40 "$OUT/$4.log" >&2; die "$4 exited before answering $1"; }
    [ $SECONDS -lt $deadline ] || { tail -n 40 "$OUT/$4.log" >&2; die "$4 did not answer $1 within $2 s"; }
    sleep 0.5
  done
}

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 20); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

API_PORT=$(free_port)
UI_PORT=$(free_port)
while [ "$UI_PORT" = "$API_PORT" ]; do UI_PORT=$(free_port); done
API_ORIGIN=http://127.0.0.1:$API_PORT
UI_URL=http://127.0.0.1:$UI_PORT

say "agent-server on $API_ORIGIN (in-memory persistence)"
cd "$REPO"
# setsid: each server leads its own process group, which cleanup stops as a whole.
env -u DATABASE_URL MODEL="${MODEL:-offline:deterministic}" LOG_LEVEL=INFO \
  setsid "$PYTHON" -m src.web --host 127.0.0.1 --port "$API_PORT" >"$OUT/server.log" 2>&1 &
pids+=($!)
wait_http "$API_ORIGIN/info" 60 "${pids[-1]}" server

say "Agent Chat UI on $UI_URL (next $SERVE, $MODE)"
cd "$UI_DIR"
# The passthrough route (src/app/api/[..._path]) forwards to LANGGRAPH_API_URL; only
# same-origin mode sends the browser there.
LANGGRAPH_API_URL=$API_ORIGIN setsid node_modules/.bin/next "$SERVE" -H 127.0.0.1 -p "$UI_PORT" \
  >"$OUT/ui.log" 2>&1 &
pids+=($!)
wait_http "$UI_URL/" 180 "${pids[-1]}" ui

if [ "$MODE" = same-origin ]; then API_URL=$UI_URL/api; else API_URL=$API_ORIGIN; fi

say "driver: two turns and a reload"
cd "$HERE"
set +e
UI_URL=$UI_URL API_URL=$API_URL ASSISTANT_ID=agent CHROMIUM=$CHROMIUM SCREENSHOT_DIR=$OUT node drive.mjs
rc=$?
set -e
if [ $rc -ne 0 ]; then
  say "last lines of the server's log ($OUT/server.log)"
  tail -n 40 "$OUT/server.log"
fi
exit $rc
