#!/usr/bin/env bash
# Start the real services the test suite talks to; install them first where they are missing.
# Idempotent: safe to run before every test run (CI starts from a clean checkout).
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }

# PostgreSQL: required in CI (CI=true); elsewhere its tests skip with a reason when it is absent.
if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL"
    if ls /etc/postgresql >/dev/null 2>&1; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 || { [ "${CI:-}" = "true" ] && { log "PostgreSQL is required in CI"; exit 1; }; }
else
  log "PostgreSQL client tools not found; PostgreSQL tests will skip (CI requires them)"
  [ "${CI:-}" = "true" ] && exit 1
fi
exit 0
