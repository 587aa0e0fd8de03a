#!/usr/bin/env bash
# Runs Manila's own API tests (tempest + manila-tempest-plugin, pinned in requirements.txt
# and constraints.txt) against a fresh `shoal serve` per run, with the built-in identity and
# tempest's pre-provisioned credentials, and prints per run and overall
# `N passed, N failed, N skipped`.
#
#   bash tests/tempest/run.sh [RUN...]     RUN: readable | dr | writable (default: all three)
#
# readable and dr: four `local` back ends (two availability zones of two back ends each,
# one replication domain), replication_type readable or dr. writable: the same layout on
# the `dummy` driver (local refuses writable replication).
#
# Environment:
#   TEMPEST_VENV            the venv (default target/tempest-venv); made anew when
#                           requirements.txt, constraints.txt or the Python version changed
#   SHOAL_BIN               the shoal binary (default target/debug/shoal, built with cargo if
#                           unset); removed from shoal's own environment
#   PYTHON                  the Python that makes the venv (default python3; 3.11 as in CI)
#   TEMPEST_CONCURRENCY     tempest workers (default 2)
#   TEMPEST_TIMEOUT         seconds one run may take before it is cut (default 720); tests
#                           still running then count as failed
#   TEMPEST_REGEX           the tests to run (default: the replication, snapshot, share
#                           instance, export location, share action and manage modules)
#   TEMPEST_ALLOW_FAILURES  1: exit 0 even when tests failed (to look at counts by hand)
#   TEMPEST_KEEP            1: keep every run's directory (logs, tempest.conf, subunit)
#   TEMPEST_SNAPSHOTS       0: snapshot capabilities and tests off in tempest.conf (to see
#                           what fails besides snapshots; default 1: on, as CI runs it)
#
# The plugin's class set-ups create and delete users through Keystone's v3 admin API
# (create_user_and_get_client); the built-in identity serves those calls itself.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

RUNS=("$@")
if [ ${#RUNS[@]} -eq 0 ]; then RUNS=(readable dr writable); fi
for run in "${RUNS[@]}"; do
  case "$run" in
    readable | dr | writable) ;;
    *) echo "unknown run '$run' (expected readable, dr or writable)" >&2; exit 2 ;;
  esac
done

CONCURRENCY="${TEMPEST_CONCURRENCY:-2}"
RUN_TIMEOUT="${TEMPEST_TIMEOUT:-720}"
T='manila_tempest_tests\.tests\.api\.'
DEFAULT_REGEX="^${T}(test_replication|admin\.test_replication|test_snapshot|admin\.test_snapshot"
DEFAULT_REGEX+="|admin\.test_share_snapshot_instances|test_revert_to_snapshot"
DEFAULT_REGEX+="|admin\.test_share_instances|admin\.test_export_locations"
DEFAULT_REGEX+="|test_shares_actions|admin\.test_shares_actions|admin\.test_share_manage)"
REGEX="${TEMPEST_REGEX:-$DEFAULT_REGEX}"
EXCLUDE_LIST="$HERE/exclude.txt"

# --- tempest ------------------------------------------------------------------------------
VENV="${TEMPEST_VENV:-target/tempest-venv}"
PYTHON="${PYTHON:-python3}"
REQ_HASH="$({ "$PYTHON" -V 2>&1; cat "$HERE/requirements.txt" "$HERE/constraints.txt"; } | sha256sum | cut -d' ' -f1)"
STAMP="$VENV/.requirements-sha256"
if [ -x "$VENV/bin/tempest" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$REQ_HASH" ]; then
  echo "tempest: $VENV is up to date"
else
  echo "tempest: installing into $VENV"
  "$PYTHON" -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
  echo "$REQ_HASH" >"$STAMP"
fi
VENV="$(cd "$VENV" && pwd)"
PY="$VENV/bin/python"
TEMPEST="$VENV/bin/tempest"
echo "tempest: $("$TEMPEST" --version 2>&1), manila-tempest-plugin $("$PY" -m pip show manila-tempest-plugin 2>/dev/null | sed -n 's/^Version: //p')"

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
  "$PY" -c 'import secrets; print("p" + secrets.token_urlsafe(18))'
}

# shoal.toml of one run: four back ends, two per availability zone, one replication domain,
# so that a share and two replicas (test_add_multiple_share_replicas) always find three
# pools whichever zone tempest picks for the share.
write_shoal_config() {
  local run=$1 dir=$2 port=$3 public=$4 driver=local type=$1 az name i
  if [ "$run" = writable ]; then driver=dummy; fi
  {
    printf 'host = "tempest"\ndata_dir = "%s"\n' "$dir/data"
    printf '[api]\nlisten = "127.0.0.1:%s"\nauth_strategy = "builtin"\n' "$port"
    # runs go side by side: each node's NFS server on a port of its own
    printf '[nfs]\nlisten = "127.0.0.1:0"\n'
    printf '[identity]\npublic_endpoint = "%s"\n' "$public"
    # tempest logs in many times from one address; the lock-out is not under test here.
    printf 'address_failure_limit = 0\nuser_failure_limit = 0\n'
    # Replica states move within tempest's polling, not Manila's five minutes.
    printf '[periodic]\nreport_interval = "2s"\nreplica_state_update_interval = "2s"\n'
    for i in 1 2 3 4; do
      az=az$(((i + 1) / 2))
      name=$driver$i
      printf '[[backends]]\nname = "%s"\ndriver = "%s"\navailability_zone = "%s"\n' "$name" "$driver" "$az"
      printf 'replication_domain = "tempest"\nreplication_type = "%s"\n' "$type"
      printf '[[backends.pools]]\nname = "pool1"\nreserved_percentage = 0\n'
      if [ "$driver" = local ]; then
        printf 'path = "pools/%s"\n' "$name"
      else
        printf 'total_capacity_gb = 1000\n'
      fi
    done
  } >"$dir/shoal.toml"
}

# Pre-provisioned credentials: admins, and members each in a project of their own, so that
# primary and alt are always two projects. Enough for CONCURRENCY workers that each hold an
# admin, a primary and an alt account.
ACCOUNT_SETS=$((CONCURRENCY + 1))

make_accounts() {
  local dir=$1 i pw who
  : >"$dir/accounts.yaml"
  printf -- "- username: 'admin'\n  project_name: 'admin'\n  password: '%s'\n  roles: ['admin']\n" \
    "$ADMIN_PW" >>"$dir/accounts.yaml"
  for i in $(seq 1 "$ACCOUNT_SETS"); do
    if [ "$i" -gt 1 ]; then
      pw="$(random_password)"
      printf '%s\n' "$pw" | env -u SHOAL_BIN "$SHOAL_BIN" identity user add "tempest-admin$i" \
        --project "tempest-admin$i" --role admin --password-stdin --config "$dir/shoal.toml" \
        >>"$dir/user-add.log" 2>&1 || return 1
      printf -- "- username: 'tempest-admin%s'\n  project_name: 'tempest-admin%s'\n  password: '%s'\n  roles: ['admin']\n" \
        "$i" "$i" "$pw" >>"$dir/accounts.yaml"
    fi
    for who in a b; do
      pw="$(random_password)"
      printf '%s\n' "$pw" | env -u SHOAL_BIN "$SHOAL_BIN" identity user add "tempest-$who$i" \
        --project "tempest-project-$who$i" --role member --password-stdin --config "$dir/shoal.toml" \
        >>"$dir/user-add.log" 2>&1 || return 1
      printf -- "- username: 'tempest-%s%s'\n  project_name: 'tempest-project-%s%s'\n  password: '%s'\n  roles: ['member']\n" \
        "$who" "$i" "$who" "$i" "$pw" >>"$dir/accounts.yaml"
    done
  done
}

write_tempest_config() {
  local run=$1 dir=$2 url=$3 ws=$4 snapshots=True
  if [ "${TEMPEST_SNAPSHOTS:-1}" = 0 ]; then snapshots=False; fi
  # Snapshot features are on in every run: what shoal lacks shows as failures, not skips.
  # capability_storage_protocol is what shoal's pools report (NFS_CIFS, as Manila's LVM
  # and dummy drivers): tests put it in share types' extra specs, matched exactly.
  cat >"$ws/etc/tempest.conf" <<EOF
[DEFAULT]
debug = True
use_stderr = False
log_dir = $dir
log_file = tempest.log

[oslo_concurrency]
lock_path = $dir/locks

[auth]
use_dynamic_credentials = False
test_accounts_file = $dir/accounts.yaml
default_credentials_domain_name = Default
create_isolated_networks = False
admin_domain_name = Default

[identity]
auth_version = v3
uri_v3 = $url/identity/v3
region = RegionOne
disable_ssl_certificate_validation = True
admin_role = admin

[identity-feature-enabled]
api_v2 = False
api_v3 = True

[service_available]
manila = True
nova = False
cinder = False
glance = False
neutron = False
swift = False

[validation]
run_validation = False

[share]
catalog_type = sharev2
endpoint_type = publicURL
min_api_microversion = 2.0
max_api_microversion = 2.99
multitenancy_enabled = False
create_networks_when_multitenancy_enabled = False
enable_protocols = nfs
enable_ip_rules_for_protocols = nfs
enable_ro_access_level_for_protocols = nfs
capability_storage_protocol = NFS_CIFS
build_interval = 1
build_timeout = 120
share_creation_retry_number = 0
suppress_errors_in_cleanup = False
run_replication_tests = True
run_multiple_share_replicas_tests = True
backend_replication_type = $run
capability_snapshot_support = $snapshots
capability_create_share_from_snapshot_support = $snapshots
capability_revert_to_snapshot_support = $snapshots
run_snapshot_tests = $snapshots
run_revert_to_snapshot_tests = $snapshots
run_mount_snapshot_tests = $snapshots
run_manage_unmanage_tests = True
run_manage_unmanage_snapshot_tests = $snapshots
run_share_group_tests = False
# On so that test_replication_negative.test_migration_of_replicated_share runs (Manila
# refuses to migrate a replicated share: 409); the migration modules themselves are not in
# the regex, since shoal has no share migration (migration_start refuses what it cannot do).
run_host_assisted_migration_tests = True
run_driver_assisted_migration_tests = False
run_positive_migration_replica_tests = False
run_negative_migration_replica_tests = False
run_share_server_migration_tests = False
run_extend_tests = True
run_shrink_tests = True
run_quota_tests = True
run_driver_assisted_backup_tests = False
run_encryption_tests = False
multi_backend = False
EOF
}

TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0

run_one() {
  local run=$1 dir port url log ws rc=0 summary passed failed skipped
  dir="$(mktemp -d "${TMPDIR:-/tmp}/shoal-tempest-$run.XXXXXX")"
  port="$(free_port)"
  url="http://127.0.0.1:$port"
  log="$dir/server.log"
  ws="$dir/workspace"
  printf '\n--- run %s: shoal on %s, everything in %s\n' "$run" "$url" "$dir"

  ADMIN_PW="$(random_password)"
  write_shoal_config "$run" "$dir" "$port" "$url"
  env -u SHOAL_BIN SHOAL_ADMIN_PASSWORD="$ADMIN_PW" RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
    "$SHOAL_BIN" serve --config "$dir/shoal.toml" >"$log" 2>&1 &
  SERVER_PID=$!

  local ready=0
  for _ in $(seq 1 300); do # at most ~60 s
    if answers "$url/"; then ready=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [ "$ready" != 1 ]; then
    echo "FAIL $run: shoal did not answer GET / (exited or not ready within 60 s)"
    echo "--- tail of $log"
    tail -n 40 "$log" || true
    stop_server
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    return 0
  fi

  if ! make_accounts "$dir"; then
    echo "FAIL $run: shoal identity user add: $(tail -n 3 "$dir/user-add.log" | tr '\n' ' ')"
    stop_server
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    return 0
  fi

  "$TEMPEST" init --workspace-path "$dir/workspaces.yaml" "$ws" >/dev/null
  write_tempest_config "$run" "$dir" "$url" "$ws"
  mkdir -p "$dir/locks"

  local start=$SECONDS
  (
    cd "$ws"
    # timeout signals the whole process group, so stestr's workers stop with it.
    timeout --kill-after=30 "$RUN_TIMEOUT" "$TEMPEST" run --subunit --concurrency "$CONCURRENCY" \
      --regex "$REGEX" --exclude-list "$EXCLUDE_LIST" >"$dir/run.subunit" 2>"$dir/tempest-run.err"
  ) || rc=$?
  stop_server
  local cut=0
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "FAIL $run: cut after ${RUN_TIMEOUT} s (counted as one failure; tests in progress count as failed)"
    cut=1
  fi

  summary="$("$PY" "$HERE/summarize.py" "$dir/run.subunit" "$dir" | tee "$dir/summary.txt" | tail -n 1)"
  grep -E '^(FAIL|UNSTABLE) ' "$dir/summary.txt" || true
  sed -n "s/^replication modules: /run $run, replication modules: /p" "$dir/summary.txt"
  if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
    passed=${BASH_REMATCH[1]}
    failed=$((BASH_REMATCH[2] + cut))
    skipped=${BASH_REMATCH[3]}
  else
    echo "FAIL $run: no summary of the subunit stream (tempest exit $rc)"
    tail -n 20 "$dir/tempest-run.err" || true
    passed=0 failed=1 skipped=0
  fi
  if [ "$passed" = 0 ] && [ "$failed" = 0 ]; then
    echo "FAIL $run: no test ran (tempest exit $rc)"
    tail -n 20 "$dir/tempest-run.err" || true
    failed=1
  fi
  printf 'run %s (%d s): %d passed, %d failed, %d skipped\n' "$run" "$((SECONDS - start))" \
    "$passed" "$failed" "$skipped"
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  TOTAL_SKIPPED=$((TOTAL_SKIPPED + skipped))

  if [ "$failed" != 0 ] || [ "${TEMPEST_KEEP:-0}" = 1 ]; then
    echo "run $run: tempest log $dir/tempest.log, shoal log $log, failures $dir/failures.txt"
  else
    rm -rf "$dir"
  fi
}

START=$SECONDS
for run in "${RUNS[@]}"; do
  run_one "$run"
done
printf '\nManila tempest, runs %s: %d s\n' "${RUNS[*]}" "$((SECONDS - START))"
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
if [ "$TOTAL_FAILED" != 0 ] && [ "${TEMPEST_ALLOW_FAILURES:-0}" = 1 ]; then
  echo "TEMPEST_ALLOW_FAILURES=1: exit 0 despite $TOTAL_FAILED failures"
  exit 0
fi
[ "$TOTAL_FAILED" = 0 ]
