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

# --- Dovecot (IMAP) for the email channel's tests (channels/email) -------------------------------
# The tests start a private instance with their own config; only the binary is needed here.
if ! command -v dovecot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    log "installing dovecot-imapd"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null
  else
    log "dovecot not found and cannot be installed here; IMAP tests will skip (CI requires them)"
    [ "${CI:-}" = "true" ] && exit 1
  fi
fi
# A packaged service the install may have started is not used: stop it (the tests run their own).
if command -v dovecot >/dev/null 2>&1 && [ -e /run/dovecot/master.pid ]; then
  log "stopping the packaged dovecot service (tests run a private instance)"
  dovecot stop >/dev/null 2>&1 || true
fi
# --- end Dovecot ----------------------------------------------------------------------------------
# --- Chromium for the browser tests (tests/web, driven by Playwright) ----------------------------
# Debian's chromium, launched by Playwright through executable_path (never `playwright install`). The
# tests drive its headless shell (the same Chromium build, headless only: a third of the CPU a page;
# tests/web/conftest.py CHROMIUM), which is what Playwright itself uses for headless runs.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromium-headless-shell ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    log "installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium chromium-headless-shell >/dev/null 2>&1 || { apt-get update -qq >/dev/null; apt-get install -y -qq chromium chromium-headless-shell >/dev/null; }
  else
    log "chromium not found and cannot be installed here; browser tests will skip (CI requires them)"
    [ "${CI:-}" = "true" ] && exit 1
  fi
fi
# --- end Chromium ---------------------------------------------------------------------------------
exit 0
