#!/usr/bin/env bash
# The whole suite, in two phases (what `make test` runs; arguments are passed to pytest):
#   1. in parallel (pytest-xdist): every test not marked `serial`. Each worker has its own
#      PostgreSQL database, Dovecot, SMTP servers, data directories, ports and browser, so no
#      worker can break another's tests; a browser module's tests stay on one worker (loadgroup),
#      so Chromium starts once per module; tests are handed out in the order tests/conftest.py
#      gives them (LongTestsFirst: long tests first, browser modules spread out), not xdist's
#      biggest-group-first;
#   2. alone, after it: the tests marked `serial` (they restart the shared PostgreSQL cluster, or
#      measure rate limits across processes and need the CPU to themselves).
# TEST_WORKERS sets the number of parallel workers (default 4: the suite waits on servers and
# subprocesses as much as it computes, so 4 workers keep 2 cores busy).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=${PYTEST:-.venv/bin/pytest}
WORKERS=${TEST_WORKERS:-4}
# Bytecode is written (__pycache__ is git-ignored) even where the environment says not to: with
# PYTHONDONTWRITEBYTECODE set, every worker and every server or worker process a test starts
# compiled the hub's modules again, and pytest rewrote the asserts of every test module in each
# worker (collection: 20 s of CPU a process instead of 9).
export PYTHONDONTWRITEBYTECODE=

started=$(date +%s)
# A fresh clone has neither the hub's bytecode nor pytest's rewritten test modules; every worker
# would make them all at once (collection: 26 s of CPU a worker cold, 8 s warm). Made once here, a
# share on each core (tests/warm_caches.py); when they are there already this takes ~1 s a core.
shares=$(nproc 2>/dev/null || echo 2)
[ "$shares" -le 4 ] || shares=4  # ~200 test modules: more processes would mostly start pytest
for share in $(seq 0 $((shares - 1))); do
  PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" "$PYTEST" --noconftest -p no:cacheprovider -p tests.warm_caches --warm-share "$share/$shares" -q >/dev/null &
done
wait
"$PYTEST" -n "$WORKERS" --dist loadgroup --no-loadscope-reorder --phase parallel "$@"
parallel=$?
"$PYTEST" --phase serial "$@" -n 0
serial=$?
elapsed=$(( $(date +%s) - started ))

# 5 is pytest's "no tests collected": fine for one phase (-k may select tests of one phase only).
if [ "$parallel" -eq 5 ] && [ "$serial" -eq 5 ]; then status=5
elif [ "$parallel" -ne 0 ] && [ "$parallel" -ne 5 ]; then status=$parallel
elif [ "$serial" -ne 0 ] && [ "$serial" -ne 5 ]; then status=$serial
else status=0
fi
printf '\n[tests] parallel phase (%s workers): exit %s; serial phase: exit %s; %dm%02ds in all\n' \
  "$WORKERS" "$parallel" "$serial" $((elapsed / 60)) $((elapsed % 60))
[ "$status" -eq 0 ] || printf '[tests] FAILED: read the "short test summary info" of the phase that failed above\n'
exit "$status"
