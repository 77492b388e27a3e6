#!/usr/bin/env bash
# The server the browser tests run against: development mode, a fresh data dir, fast emulators.
set -euo pipefail
cd "$(dirname "$0")/../.."
data_dir="web/.e2e/server-$1"
rm -rf "$data_dir"
mkdir -p "$data_dir"
export VIDGATE_ENV=development
export VIDGATE_DATA_DIR="$data_dir"
export VIDGATE_WEB_DIR=web/out
export VIDGATE_EMULATOR_QUEUE_SECONDS=0.5
export VIDGATE_EMULATOR_RUN_SECONDS=2
export VIDGATE_EMULATOR_RENDER_HEIGHT=144
export VIDGATE_LOG_FORMAT=console
export VIDGATE_LOG_LEVEL=WARNING
unset VIDGATE_DATABASE_URL
.venv/bin/python web/e2e/make_samples.py web/.e2e/samples
exec .venv/bin/vidgate serve --host 127.0.0.1 --port "$1"
