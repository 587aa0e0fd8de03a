#!/usr/bin/env bash
# Runs the stock OpenStack clients (python-openstackclient + python-manilaclient, pinned in
# requirements.txt and constraints.txt) against a fresh `shoal serve` per mode, through
# tests/clients/e2e.py, and prints one overall `N passed, M failed` line.
#
#   bash tests/clients/run.sh MODE...      MODE: noauth | builtin
#
# Environment:
#   CLIENTS_VENV  the clients' virtualenv (default target/clients-venv); made anew when
#                 requirements.txt, constraints.txt or the Python version changed
#   SHOAL_BIN     the shoal binary (default target/debug/shoal, built with cargo if unset);
#                 removed from shoal's own environment, where SHOAL_* variables are settings
#   PYTHON        the Python that makes the venv (default python3; 3.11 as in CI)
#   E2E_FLOW      full | subset: e2e.py's --flow (default: full for builtin, subset for noauth)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

if [ $# -eq 0 ]; then
  echo "usage: $0 MODE... (noauth, builtin)" >&2
  exit 2
fi
for mode in "$@"; do
  case "$mode" in
    noauth | builtin) ;;
    *) echo "unknown mode '$mode' (expected noauth or builtin)" >&2; exit 2 ;;
  esac
done

# --- the clients --------------------------------------------------------------------------
VENV="${CLIENTS_VENV:-target/clients-venv}"
PYTHON="${PYTHON:-python3}"
REQ_HASH="$({ "$PYTHON" -V 2>&1; cat "$HERE/requirements.txt" "$HERE/constraints.txt"; } | sha256sum | cut -d' ' -f1)"
STAMP="$VENV/.requirements-sha256"
if [ -x "$VENV/bin/openstack" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$REQ_HASH" ]; then
  echo "clients: $VENV is up to date"
else
  echo "clients: installing into $VENV"
  "$PYTHON" -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
  echo "$REQ_HASH" >"$STAMP"
fi
PY="$VENV/bin/python"
OPENSTACK="$VENV/bin/openstack"
echo "clients: $("$OPENSTACK" --version 2>&1), python-manilaclient $("$PY" -m pip show python-manilaclient 2>/dev/null | sed -n 's/^Version: //p')"

# --- the server ---------------------------------------------------------------------------
if [ -n "${SHOAL_BIN:-}" ]; then
  [ -x "$SHOAL_BIN" ] || { echo "SHOAL_BIN=$SHOAL_BIN is not an executable" >&2; exit 2; }
else
  SHOAL_BIN=target/debug/shoal
  # A no-op when the binary is fresh (CI has just built it for the tests).
  cargo build --locked -p shoal
fi
SHOAL_BIN="$(cd "$(dirname "$SHOAL_BIN")" && pwd)/$(basename "$SHOAL_BIN")"

SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    # Bounded wait for the graceful shutdown, then the hard way.
    for _ in $(seq 1 150); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "shoal (pid $SERVER_PID) ignored SIGTERM for 30 s: SIGKILL" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# GET / answers 300 once the API listens.
answers() {
  "$PY" - "$1" <<'EOF'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
EOF
}

random_password() {
  "$PY" -c 'import secrets; print(secrets.token_urlsafe(18))'
}

TOTAL_PASSED=0
TOTAL_FAILED=0

run_mode() {
  local mode=$1 dir port url log out rc=0 passed failed admin_pw="" demo_pw=""
  dir="$(mktemp -d "${TMPDIR:-/tmp}/shoal-clients-$mode.XXXXXX")"
  port="$(free_port)"
  url="http://127.0.0.1:$port"
  log="$dir/server.log"
  out="$dir/e2e.out"
  printf '\n--- mode %s: shoal on %s, data in %s\n' "$mode" "$url" "$dir/data"

  local -a server_env=(SHOAL_PERIODIC__REPLICA_STATE_UPDATE_INTERVAL=2s SHOAL_NFS__LISTEN=127.0.0.1:0)
  local -a e2e_args=(--openstack "$OPENSTACK" --url "$url" --mode "$mode" --data-dir "$dir/data")
  if [ -n "${E2E_FLOW:-}" ]; then e2e_args+=(--flow "$E2E_FLOW"); fi
  if [ "$mode" = builtin ]; then
    admin_pw="$(random_password)"
    demo_pw="$(random_password)"
    server_env+=("SHOAL_ADMIN_PASSWORD=$admin_pw")
    # `=` form: a random password may start with "-".
    e2e_args+=("--admin-password=$admin_pw" "--demo-password=$demo_pw")
  fi

  env -u SHOAL_BIN "${server_env[@]}" "$SHOAL_BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" \
    --auth "$mode" >"$log" 2>&1 &
  SERVER_PID=$!

  local ready=0
  for _ in $(seq 1 300); do # at most ~60 s
    if answers "$url/"; then ready=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [ "$ready" != 1 ]; then
    echo "FAIL $mode: shoal did not answer GET / (exited or not ready within 60 s)"
    echo "--- tail of $log"
    tail -n 40 "$log" || true
    stop_server
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    return 0
  fi

  if [ "$mode" = builtin ]; then
    if ! printf '%s\n' "$demo_pw" | env -u SHOAL_BIN "$SHOAL_BIN" identity user add demo --project demo --role member \
      --password-stdin --data-dir "$dir/data" >"$dir/user-add.log" 2>&1; then
      echo "FAIL builtin: shoal identity user add demo: $(tail -n 3 "$dir/user-add.log" | tr '\n' ' ')"
      TOTAL_FAILED=$((TOTAL_FAILED + 1))
    fi
  fi

  if "$PY" "$HERE/e2e.py" "${e2e_args[@]}" | tee "$out"; then rc=0; else rc=$?; fi
  stop_server

  local summary
  summary="$(tail -n 1 "$out" || true)"
  if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=${BASH_REMATCH[1]}
    failed=${BASH_REMATCH[2]}
  else
    echo "FAIL $mode: e2e.py ended without a summary line (exit $rc)"
    passed=$(grep -c '^PASS ' "$out" || true)
    failed=$(($(grep -c '^FAIL ' "$out" || true) + 1))
  fi
  if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
    echo "FAIL $mode: e2e.py exited $rc"
    failed=1
  fi
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))

  if [ "$failed" != 0 ]; then
    echo "--- mode $mode failed; tail of $log (kept in $dir)"
    tail -n 60 "$log" || true
  else
    rm -rf "$dir"
  fi
}

START=$SECONDS
for mode in "$@"; do
  run_mode "$mode"
done
printf '\nstock OpenStack clients, modes %s: %d s\n' "$*" "$((SECONDS - START))"
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ "$TOTAL_FAILED" = 0 ]
