#!/usr/bin/env python3
"""End-to-end test of shoal with the stock OpenStack clients.

Drives the real `openstack` CLI (python-openstackclient with python-manilaclient's plugin)
as subprocesses against a running `shoal serve`, so what is tested is what users run.
Standard library only (Python 3.11).

Usage:
  e2e.py --openstack PATH --url http://127.0.0.1:PORT --mode noauth|builtin --data-dir DIR
         [--admin-password PW --demo-password PW] [--flow subset|full]

Prints one line per step, `PASS <step>` or `FAIL <step>: <reason>`, then `N passed, M failed`
alone on the last line; exits 1 when a step failed. A step that needs a resource an earlier
step failed to make fails with "skipped: needs ...". tests/clients/run.sh starts the server.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

# The client's highest microversion: python-manilaclient 6.3.0 (requirements.txt) speaks up
# to 2.98; shoal serves up to 2.99, so the default negotiation must settle on 2.98.
EXPECTED_CLIENT_MAX = "2.98"
WAIT_SECONDS = 120.0
CLI_TIMEOUT = 180.0
POLL_INTERVAL = 0.5

REPL_TYPE = "e2e-replicated"
PLAIN_TYPE = "e2e-plain"
SHARE = "e2e-share"
PLAIN_SHARE = "e2e-plain-share"
MV_SHARE = "e2e-microversions"
DEMO_SHARE = "e2e-demo-share"
SNAP_TYPE = "e2e-snapshots"
SNAP_SHARE = "e2e-snap-share"
SNAPSHOT = "e2e-snapshot"
FROM_SNAPSHOT = "e2e-from-snapshot"
ADOPTED = "e2e-adopted"


class StepFailure(Exception):
    """A check failed; the message is the reason printed after FAIL."""


def one_line(text: str, limit: int = 400) -> str:
    """Joins the non-empty lines of `text` with ' | ' and keeps the last `limit` characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    joined = " | ".join(lines)
    return joined if len(joined) <= limit else "..." + joined[-limit:]


def stderr_tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return one_line("\n".join(kept)) or "(no stderr)"


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise StepFailure(reason)


def wait_for(what: str, probe: Callable[[], tuple[bool, Any]], timeout: float = WAIT_SECONDS) -> Any:
    """Polls `probe` (which returns (done, last_seen)) until done or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        done, seen = probe()
        if done:
            return seen
        if time.monotonic() >= deadline:
            raise StepFailure(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {seen}")
        time.sleep(POLL_INTERVAL)


def norm(row: dict[str, Any]) -> dict[str, Any]:
    """`-f json` list output uses column headers ("Replica State"): make them field names."""
    return {k.lower().replace(" ", "_"): v for k, v in row.items()}


class Result:
    def __init__(self, argv: list[str], rc: int, out: str, err: str):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    @property
    def command(self) -> str:
        # The CLI arguments after the global options: "share replica show <id>".
        words = self.argv[1:]
        for i, word in enumerate(words):
            if word == "share":
                words = words[i:]
                break
        return "openstack " + " ".join(words)


class Openstack:
    """One identity's view of the CLI: fixed global arguments and environment."""

    def __init__(self, exe: str, global_args: list[str], env: dict[str, str], batch_env: dict[str, str]):
        self.exe = exe
        self.global_args = global_args
        self.env = env
        # Same identity through environment variables only: the interactive mode runs the
        # command-line arguments as commands, so global options cannot be passed there.
        self.batch_env = batch_env

    def run(self, *args: str, version: str | None = None, debug: bool = False) -> Result:
        argv = [self.exe, *self.global_args]
        if version:
            argv += ["--os-share-api-version", version]
        if debug:
            argv.append("--debug")
        argv += list(args)
        try:
            proc = subprocess.run(
                argv, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=CLI_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            raise StepFailure(f"`{Result(argv, -1, '', '').command}` did not finish within {CLI_TIMEOUT:.0f}s") from exc
        return Result(argv, proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, **kw: Any) -> Result:
        res = self.run(*args, **kw)
        if res.rc != 0:
            raise StepFailure(f"`{res.command}` exited {res.rc}: {stderr_tail(res.err)}")
        return res

    def json(self, *args: str, **kw: Any) -> Any:
        res = self.ok(*args, "-f", "json", **kw)
        try:
            return json.loads(res.out)
        except json.JSONDecodeError as exc:
            raise StepFailure(f"`{res.command}` printed no JSON: {one_line(res.out)}") from exc

    def fails(self, *args: str, expect: list[str], **kw: Any) -> Result:
        """Runs a command that must fail with a message containing every string of `expect`
        (case-insensitive)."""
        res = self.run(*args, **kw)
        if res.rc == 0:
            raise StepFailure(f"`{res.command}` succeeded but must fail; stdout: {one_line(res.out, 200)}")
        missing = [e for e in expect if e.lower() not in res.err.lower()]
        if missing:
            raise StepFailure(
                f"`{res.command}` failed (exit {res.rc}) without {missing} in its message: {stderr_tail(res.err)}"
            )
        return res

    def batch(self, lines: list[str]) -> subprocess.CompletedProcess[str]:
        """Runs several commands in one client process (the CLI's interactive mode, commands
        on standard input), so they follow each other within milliseconds."""
        try:
            return subprocess.run(
                [self.exe], env=self.batch_env, input="\n".join(lines) + "\n", capture_output=True,
                text=True, timeout=CLI_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            raise StepFailure(f"interactive `openstack` did not finish within {CLI_TIMEOUT:.0f}s") from exc


def clean_env() -> dict[str, str]:
    """The caller's environment without any OS_* setting that could change the identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def noauth_cli(exe: str, url: str) -> Openstack:
    endpoint = url.rstrip("/") + "/v2/"
    args = ["--os-auth-type", "admin_token", "--os-endpoint", endpoint, "--os-token", "admin:admin"]
    batch_env = clean_env() | {"OS_AUTH_TYPE": "admin_token", "OS_ENDPOINT": endpoint, "OS_TOKEN": "admin:admin"}
    return Openstack(exe, args, clean_env(), batch_env)


def builtin_cli(exe: str, url: str, user: str, password: str) -> Openstack:
    env = clean_env() | {
        "OS_AUTH_TYPE": "password",
        "OS_AUTH_URL": url.rstrip("/") + "/identity/v3",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": user,
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": user,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": "RegionOne",
    }
    return Openstack(exe, [], env, env)


# ---------------------------------------------------------------------------------------------
# Files


def local_path(export_path: str) -> Path:
    """`local://<host><absolute path>` → the path."""
    prefix = "local://"
    require(export_path.startswith(prefix), f"export location {export_path!r} is not local://<host><path>")
    rest = export_path[len(prefix):]
    slash = rest.find("/")
    require(slash >= 0, f"export location {export_path!r} has no absolute path")
    return Path(rest[slash:])


def split_locations(rows: list[dict[str, Any]], instance_id: str) -> Path:
    """An instance's export locations as an admin lists them: one NFS location
    `<address>:/shares/<instance id>` for clients and one admin-only `local://<host><path>`
    (where the data lives, which the replication reads). Checks both; returns the path."""
    nfs = [r["path"] for r in rows if not r["path"].startswith("local://")]
    local = [r["path"] for r in rows if r["path"].startswith("local://")]
    require(len(nfs) == 1 and nfs[0].endswith(f":/shares/{instance_id}"),
            f"expected one NFS location .../shares/{instance_id}, got {[r['path'] for r in rows]}")
    require(len(local) == 1, f"expected one local:// location, got {[r['path'] for r in rows]}")
    return local_path(local[0])


def tree(root: Path) -> dict[str, str]:
    """Every entry below `root`: relative path → 'dir', 'link:<target>' or 'file:<sha256>'."""
    require(root.is_dir(), f"{root} is not a directory")
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames + filenames:
            path = base / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def tree_diff(expected: dict[str, str], actual: dict[str, str]) -> str:
    """Empty when equal, else a short description of the first differences."""
    problems = []
    for rel in sorted(expected.keys() - actual.keys()):
        problems.append(f"missing {rel}")
    for rel in sorted(actual.keys() - expected.keys()):
        problems.append(f"unexpected {rel}")
    for rel in sorted(expected.keys() & actual.keys()):
        if expected[rel] != actual[rel]:
            problems.append(f"differs {rel}")
    if not problems:
        return ""
    more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
    return ", ".join(problems[:5]) + more


def write_test_data(root: Path) -> None:
    rng = random.Random(20250101)
    (root / "docs" / "nested" / "deeper").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "docs" / "readme.txt").write_text("shoal end-to-end test\n" * 200)
    (root / "docs" / "nested" / "notes.md").write_bytes(rng.randbytes(3 * 1024))
    (root / "docs" / "nested" / "deeper" / "leaf.bin").write_bytes(rng.randbytes(7 * 1024 + 13))
    (root / "data" / "big.bin").write_bytes(rng.randbytes(2 * 1024 * 1024))
    (root / "data" / "empty").write_bytes(b"")
    (root / "ünïcødé 日本語").mkdir(exist_ok=True)
    (root / "ünïcødé 日本語" / "fïlé-ñame ✓.txt").write_text("unicode names survive\n", encoding="utf-8")
    (root / "docs" / "link-to-readme").symlink_to("readme.txt")


def modify_test_data(root: Path) -> None:
    with open(root / "data" / "big.bin", "r+b") as f:  # a block in the middle of the big file
        f.seek(1024 * 1024 + 4096)
        f.write(b"changed by e2e.py " * 64)
    with open(root / "docs" / "readme.txt", "a") as f:
        f.write("appended after the first sync\n")
    (root / "docs" / "nested" / "added-later.txt").write_text("new file\n")
    (root / "data" / "empty").unlink()


# ---------------------------------------------------------------------------------------------
# The test


class E2E:
    def __init__(self, opts: argparse.Namespace):
        self.opts = opts
        self.url = opts.url.rstrip("/")
        self.data_dir = Path(opts.data_dir).resolve()
        self.full = opts.flow == "full"
        if opts.mode == "noauth":
            self.admin = noauth_cli(opts.openstack, self.url)
            self.demo: Openstack | None = None
        else:
            self.admin = builtin_cli(opts.openstack, self.url, "admin", opts.admin_password)
            self.demo = builtin_cli(opts.openstack, self.url, "demo", opts.demo_password)
        self.passed = 0
        self.failed = 0
        self.state: dict[str, Any] = {}
        # Every share instance id seen, to check that nothing of them is left on disk.
        self.instance_ids: set[str] = set()
        # Pool directories seen in export locations (<pool>/shares/<id>, <pool>/replicas/<id>/current).
        self.pools: set[Path] = set()

    # -- reporting

    def step(self, name: str, fn: Callable[[], None], needs: tuple[str, ...] = ()) -> bool:
        missing = [k for k in needs if self.state.get(k) is None]
        if missing:
            return self.report(name, f"skipped: needs {', '.join(missing)} from an earlier step")
        try:
            fn()
        except StepFailure as exc:
            return self.report(name, str(exc))
        except Exception as exc:  # a bug in the check itself is a failure too, never a crash
            return self.report(name, f"{type(exc).__name__}: {one_line(str(exc))}")
        return self.report(name, None)

    def report(self, name: str, failure: str | None) -> bool:
        if failure is None:
            self.passed += 1
            print(f"PASS {name}", flush=True)
            return True
        self.failed += 1
        print(f"FAIL {name}: {one_line(failure, 600)}", flush=True)
        return False

    # -- helpers on resources

    def share(self, cli: Openstack, share: str) -> dict[str, Any]:
        return cli.json("share", "show", share)

    def wait_share_status(self, cli: Openstack, share: str, status: str) -> dict[str, Any]:
        def probe() -> tuple[bool, Any]:
            s = self.share(cli, share)
            require(s["status"] != "error", f"share {share} went to error")
            return s["status"] == status, {"status": s["status"]}

        wait_for(f"share {share} to be {status}", probe)
        return self.share(cli, share)

    def replicas(self, share_id: str, cli: Openstack | None = None, version: str | None = None) -> dict[str, dict]:
        cli = cli or self.admin
        rows = cli.json("share", "replica", "list", "--share", share_id, version=version)
        return {r["id"]: r for r in map(norm, rows)}

    def replica(self, rid: str, version: str | None = None) -> dict[str, Any]:
        return self.admin.json("share", "replica", "show", rid, version=version)

    def wait_replica(self, share_id: str, rid: str, status: str, replica_state: str, version: str | None = None) -> dict:
        def probe() -> tuple[bool, Any]:
            r = self.replicas(share_id, version=version).get(rid)
            require(r is not None, f"replica {rid} vanished")
            require(r["status"] not in ("error", "error_deleting"), f"replica {rid} went to {r['status']}")
            seen = {"status": r["status"], "replica_state": r["replica_state"]}
            return r["status"] == status and r["replica_state"] == replica_state, seen

        return wait_for(f"replica {rid} to be {status}/{replica_state}", probe)

    def wait_replica_gone(self, share_id: str, rid: str, version: str | None = None) -> None:
        def probe() -> tuple[bool, Any]:
            r = self.replicas(share_id, version=version).get(rid)
            if r is not None:
                require(r["status"] != "error_deleting", f"replica {rid} went to error_deleting")
                return False, {"status": r["status"]}
            return True, None

        wait_for(f"replica {rid} to disappear", probe)

    def wait_path_gone(self, path: Path) -> None:
        wait_for(f"{path} to be removed", lambda: (not os.path.lexists(path), "still there"))

    def create_replica(self, share_id: str, az: str, version: str | None = None) -> str:
        created = self.admin.json("share", "replica", "create", share_id, "--availability-zone", az, version=version)
        rid = created["id"]
        self.instance_ids.add(rid)
        require(created.get("share_id") == share_id, f"create answered share_id {created.get('share_id')}")
        return rid

    def share_export_path(self, share_id: str) -> Path:
        rows = [norm(r) for r in self.admin.json("share", "export", "location", "list", share_id)]
        require(len(rows) >= 1, f"share {share_id} has no export location")
        local = [r for r in rows if r["path"].startswith("local://")]
        require(len(local) == 1, f"share {share_id}: export locations {[r['path'] for r in rows]}")
        path = local_path(local[0]["path"])
        require(any(r["path"].endswith(f":/shares/{path.name}") for r in rows),
                f"share {share_id} has no NFS location: {[r['path'] for r in rows]}")
        self.pools.add(path.parent.parent)
        return path

    def replica_export_path(self, rid: str, version: str | None = None) -> Path:
        rows = [norm(r) for r in self.admin.json("share", "replica", "export", "location", "list", rid, version=version)]
        require(len(rows) >= 1, f"replica {rid} has no export location")
        path = split_locations(rows, rid)
        self.pools.add(path.parent.parent.parent)
        return path

    def wait_tree(self, what: str, root: Path, expected: dict[str, str]) -> None:
        def probe() -> tuple[bool, Any]:
            if not root.is_dir():
                return False, f"{root} does not exist"
            diff = tree_diff(expected, tree(root))
            return not diff, diff

        wait_for(what, probe)

    # -- the flow

    def run(self) -> int:
        s = self.state
        admin = self.admin

        def versions_document() -> None:
            # The versions document answers 300 Multiple Choices, which urllib raises.
            try:
                with urllib.request.urlopen(self.url + "/", timeout=10) as resp:
                    code, body = resp.status, json.load(resp)
            except urllib.error.HTTPError as exc:
                code, body = exc.code, json.load(exc)
            require(code == 300, f"GET / answered {code}")
            s["server_max"] = body["versions"][0]["version"]
            require(s["server_max"] == "2.99", f"server max version {s['server_max']}, expected 2.99")

        self.step("server versions document (GET /) lists 2.99", versions_document)

        if self.opts.mode == "builtin":
            def identity_errors() -> None:
                # A wrong password and an unknown user: Keystone's 401, as the client shows it.
                wrong = builtin_cli(self.opts.openstack, self.url, "admin", self.opts.admin_password + "x")
                wrong.fails("share", "list", expect=["HTTP 401"])
                ghost = builtin_cli(self.opts.openstack, self.url, "ghost", "whatever")
                ghost.fails("share", "list", expect=["HTTP 401"])
                # A token the client got, revoked, then used: refused.
                tok = admin.json("token", "issue")["id"]
                admin.ok("token", "revoke", tok)
                token_env = clean_env() | {
                    "OS_AUTH_TYPE": "token",
                    "OS_TOKEN": tok,
                    "OS_AUTH_URL": self.url + "/identity/v3",
                    "OS_IDENTITY_API_VERSION": "3",
                    "OS_PROJECT_NAME": "admin",
                    "OS_PROJECT_DOMAIN_NAME": "Default",
                    "OS_REGION_NAME": "RegionOne",
                }
                res = subprocess.run(
                    [self.opts.openstack, "share", "list"], env=token_env, stdin=subprocess.DEVNULL,
                    capture_output=True, text=True, timeout=CLI_TIMEOUT,
                )
                require(res.returncode != 0, "a revoked token still lists shares")
                require("401" in res.stderr, f"not a 401: {stderr_tail(res.stderr)}")

            self.step("identity: wrong password, unknown user and revoked token are refused (401)",
                      identity_errors)

        # -- share types and shares

        def create_types() -> None:
            t = admin.json(
                "share", "type", "create", REPL_TYPE, "False", "--extra-specs", "replication_type=readable",
                "--description", "replicated type of the client e2e test",
            )
            require(t.get("optional_extra_specs", {}).get("replication_type") == "readable", f"type: {t}")
            s["repl_type"] = t["id"]
            listed = {t["Name"] for t in admin.json("share", "type", "list")}
            require(REPL_TYPE in listed, f"type list: {sorted(listed)}")
            shown = admin.json("share", "type", "show", REPL_TYPE)
            require(shown["id"] == s["repl_type"], f"type show: {shown}")

        self.step("create share type with replication_type=readable", create_types)

        def create_share() -> None:
            created = admin.json(
                "share", "create", "NFS", "1", "--name", SHARE, "--share-type", REPL_TYPE,
                "--availability-zone", "az1", "--description", "e2e",
            )
            share = self.wait_share_status(admin, created["id"], "available")
            require(share["availability_zone"] == "az1", f"share in {share['availability_zone']}")
            require(share["replication_type"] == "readable", f"replication_type {share['replication_type']}")
            require(share["has_replicas"] is False, f"has_replicas {share['has_replicas']}")
            s["share"] = share["id"]

        self.step("create share in az1 and wait for available", create_share, needs=("repl_type",))

        def share_set() -> None:
            # `openstack share set` also resets the task state (to None) on every call.
            admin.ok("share", "set", s["share"], "--name", SHARE, "--description", "set by e2e.py",
                     "--property", "e2e=yes")
            share = self.share(admin, s["share"])
            require(share["description"] == "set by e2e.py", f"description {share['description']!r}")
            require(share.get("properties") == {"e2e": "yes"}, f"properties {share.get('properties')!r}")
            require(share.get("task_state") is None, f"task_state {share.get('task_state')!r}")

        self.step("share set (name, description, property)", share_set, needs=("share",))

        def share_dir() -> None:
            path = self.share_export_path(s["share"])
            require(path.is_dir(), f"export path {path} is not a directory")
            require(self.data_dir in path.parents, f"export path {path} is outside the data dir {self.data_dir}")
            s["share_path"] = path

        self.step("share export location list names the share's directory", share_dir, needs=("share",))

        def write_data() -> None:
            write_test_data(s["share_path"])
            s["expected"] = tree(s["share_path"])
            require(len(s["expected"]) >= 10, f"wrote only {len(s['expected'])} entries")

        self.step("write files into the share (nested, 2 MiB, unicode, symlink)", write_data, needs=("share_path",))

        def active_only() -> None:
            reps = self.replicas(s["share"])
            require(len(reps) == 1, f"{len(reps)} replicas listed")
            (active,) = reps.values()
            require(active["replica_state"] == "active", f"replica_state {active['replica_state']}")
            s["first_active"] = active["id"]
            self.instance_ids.add(active["id"])

        self.step("replica list shows the share's active replica", active_only, needs=("share",))

        # -- a replica in az2

        def create_replica() -> None:
            s["replica"] = self.create_replica(s["share"], "az2")

        self.step("replica create in az2", create_replica, needs=("share",))

        def replica_in_sync() -> None:
            self.wait_replica(s["share"], s["replica"], "available", "in_sync")
            share = self.share(admin, s["share"])
            require(share["has_replicas"] is True, f"share has_replicas {share['has_replicas']}")
            s["replica_ready"] = True

        self.step("replica becomes available and in_sync", replica_in_sync, needs=("replica",))

        def list_replicas() -> None:
            everything = {r["id"]: r for r in map(norm, admin.json("share", "replica", "list"))}
            for rid in (s["first_active"], s["replica"]):
                require(rid in everything, f"replica {rid} missing from `share replica list`")
            reps = self.replicas(s["share"])
            require(set(reps) == {s["first_active"], s["replica"]}, f"--share lists {sorted(reps)}")
            require(reps[s["replica"]]["availability_zone"] == "az2", f"replica az {reps[s['replica']]}")
            require(reps[s["first_active"]]["replica_state"] == "active", f"active {reps[s['first_active']]}")

        self.step("replica list (all, and --share)", list_replicas, needs=("replica_ready", "first_active"))

        def show_replica() -> None:
            r = self.replica(s["replica"])
            for field, value in (("share_id", s["share"]), ("status", "available"), ("replica_state", "in_sync"),
                                 ("availability_zone", "az2")):
                require(r.get(field) == value, f"{field}={r.get(field)!r}, expected {value!r}")
            require(r.get("host"), f"admin show has no host: {r}")
            require(isinstance(r.get("export_locations"), list) and r["export_locations"],
                    f"show has no export_locations: {r.get('export_locations')}")

        self.step("replica show", show_replica, needs=("replica_ready",))

        def replica_exports() -> None:
            rows = [norm(r) for r in admin.json("share", "replica", "export", "location", "list", s["replica"])]
            require(len(rows) == 2, f"{len(rows)} export locations")
            path = split_locations(rows, s["replica"])
            require(path.name == "current" and path.parent.name == s["replica"] and path.parent.parent.name == "replicas",
                    f"replica export path {path} is not .../replicas/{s['replica']}/current")
            shown = admin.json("share", "replica", "export", "location", "show", s["replica"], rows[0]["id"])
            require(shown.get("path") == rows[0]["path"], f"show path {shown.get('path')}")
            require(shown.get("share_instance_id") == s["replica"], f"share_instance_id {shown.get('share_instance_id')}")
            s["replica_path"] = path

        self.step("replica export location list and show", replica_exports, needs=("replica_ready",))

        def replica_has_data() -> None:
            diff = tree_diff(s["expected"], tree(s["replica_path"]))
            require(not diff, f"replica tree differs from the active's: {diff}")

        self.step("replica directory holds the active's files, byte for byte", replica_has_data,
                  needs=("replica_path", "expected"))

        if self.full:
            def resync() -> None:
                modify_test_data(s["share_path"])
                s["expected"] = tree(s["share_path"])
                admin.ok("share", "replica", "resync", s["replica"])
                self.wait_tree("the change to reach the replica", s["replica_path"], s["expected"])
                self.wait_replica(s["share"], s["replica"], "available", "in_sync")

            self.step("modify the active, replica resync, change arrives in_sync", resync,
                      needs=("replica_path", "expected"))

        # -- promotion

        def promote() -> None:
            admin.ok("share", "replica", "promote", s["replica"])
            self.wait_replica(s["share"], s["replica"], "available", "active")

            def old_active_demoted() -> tuple[bool, Any]:
                r = self.replicas(s["share"]).get(s["first_active"])
                require(r is not None, "the former active replica vanished")
                seen = {"status": r["status"], "replica_state": r["replica_state"]}
                return r["status"] == "available" and r["replica_state"] in ("in_sync", "out_of_sync"), seen

            wait_for("the former active to become a secondary", old_active_demoted)
            share = self.share(admin, s["share"])
            require(share["availability_zone"] == "az2", f"share az after promotion {share['availability_zone']}")
            s["promoted"] = True

        self.step("replica promote swaps the roles", promote, needs=("replica_ready", "first_active"))

        def new_active_data() -> None:
            path = self.share_export_path(s["share"])
            require(path.parent.name == "shares" and path.name == s["replica"],
                    f"share export path after promotion {path} is not the promoted replica's")
            diff = tree_diff(s["expected"], tree(path))
            require(not diff, f"new active differs: {diff}")
            s["share_path"] = path

            # The demoted replica exports its published copy once its back end has synced it.
            def demoted_export() -> tuple[bool, Any]:
                old = self.replica_export_path(s["first_active"])
                return old.name == "current" and old.parent.name == s["first_active"], str(old)

            old = wait_for("the former active to export .../replicas/<id>/current", demoted_export)
            old = Path(old)
            self.wait_tree("the former active to get the data as a secondary", old, s["expected"])
            s["old_replica_path"] = old

        self.step("data at the new active (and at the demoted one)", new_active_data, needs=("promoted", "expected"))

        if self.full:
            self.admin_resets()
            self.refusals()

        # -- delete a secondary

        def delete_secondary() -> None:
            self.wait_replica(s["share"], s["first_active"], "available", "in_sync")
            admin.ok("share", "replica", "delete", s["first_active"])
            self.wait_replica_gone(s["share"], s["first_active"])
            self.wait_path_gone(s["old_replica_path"].parent)
            s["secondary_deleted"] = True

        self.step("replica delete (a non-active one) removes it and its directory", delete_secondary,
                  needs=("promoted", "old_replica_path"))

        if self.full:
            def force_delete() -> None:
                rid = self.create_replica(s["share"], "az1")
                self.wait_replica(s["share"], rid, "available", "in_sync")
                path = self.replica_export_path(rid)
                require(path.exists(), f"{path} does not exist")
                admin.ok("share", "replica", "delete", "--force", rid)
                self.wait_replica_gone(s["share"], rid)
                self.wait_path_gone(path.parent)

            self.step("replica delete --force of a second replica", force_delete, needs=("secondary_deleted",))

        self.microversions()

        if self.demo is not None:
            self.non_admin()

        self.snapshots()
        if self.full:
            self.lifecycle()

        self.cleanup()

        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0

    def admin_resets(self) -> None:
        s, admin = self.state, self.admin
        target = s.get("first_active")

        def reset_status() -> None:
            admin.ok("share", "replica", "set", target, "--status", "error")
            r = self.replica(target)
            require(r["status"] == "error", f"status {r['status']} after --status error")
            admin.ok("share", "replica", "set", target, "--status", "available")
            r = self.replica(target)
            require(r["status"] == "available", f"status {r['status']} after --status available")

        self.step("admin replica set --status error, then available", reset_status, needs=("promoted",))

        def reset_replica_state() -> None:
            # The periodic update (every 2 s under run.sh) recomputes the state from the
            # replication facts, so the reset is read back in the same client process,
            # milliseconds later; a read that lost the race to a refresh is retried.
            seen = []
            for _ in range(3):
                proc = admin.batch([
                    f"share replica set {target} --replica-state out_of_sync",
                    f"share replica show {target} -c replica_state -f value",
                ])
                state = proc.stdout.strip().splitlines()[-1:] or ["(nothing)"]
                seen.append(state[0])
                if state[0] == "out_of_sync":
                    break
                require("failed to set" not in proc.stderr.lower(), f"set failed: {stderr_tail(proc.stderr)}")
            require(seen[-1] == "out_of_sync", f"replica_state read back after the reset: {seen}")
            admin.ok("share", "replica", "set", target, "--replica-state", "in_sync")
            self.wait_replica(s["share"], target, "available", "in_sync")

        self.step("admin replica set --replica-state out_of_sync, then in_sync", reset_replica_state,
                  needs=("promoted",))

    def refusals(self) -> None:
        s, admin = self.state, self.admin

        def no_replication_type() -> None:
            t = admin.json("share", "type", "create", PLAIN_TYPE, "False")
            s["plain_type"] = t["id"]
            created = admin.json("share", "create", "NFS", "1", "--name", PLAIN_SHARE, "--share-type", PLAIN_TYPE,
                                 "--availability-zone", "az1")
            s["plain_share"] = created["id"]
            self.wait_share_status(admin, created["id"], "available")
            admin.fails("share", "replica", "create", created["id"], "--availability-zone", "az2",
                        expect=["HTTP 400", "Replication not supported"])

        self.step("replica create of a share whose type has no replication_type fails (400)", no_replication_type)

        def delete_active() -> None:
            admin.fails("share", "replica", "delete", s["replica"], expect=["HTTP 400", "active replica"])
            r = self.replica(s["replica"])
            require(r["replica_state"] == "active" and r["status"] == "available", f"active replica now {r}")

        self.step("replica delete of the active replica fails (400)", delete_active, needs=("promoted",))

    def microversions(self) -> None:
        """Read steps, and a replica create + delete, at the client's default version (no
        --os-share-api-version), 2.56 and 2.11 (experimental header); 2.47 for the commands
        that need the replica export-location API, which the client has only from 2.47."""
        s, admin = self.state, self.admin

        def mv_share() -> None:
            created = admin.json("share", "create", "NFS", "1", "--name", MV_SHARE, "--share-type", REPL_TYPE,
                                 "--availability-zone", "az1")
            s["mv_share"] = created["id"]
            self.wait_share_status(admin, created["id"], "available")

        self.step("microversions: create a second replicated share in az1", mv_share, needs=("repl_type",))

        levels: list[tuple[str, str | None]] = [("default", None), ("2.56", "2.56")]
        if self.full:
            levels += [("2.47", "2.47"), ("2.11", "2.11")]
        else:
            levels += [("2.11", "2.11")]
        for label, version in levels:
            self.microversion(label, version)
        if self.opts.mode == "builtin":
            self.sdk_replicas()

    def sdk_replicas(self) -> None:
        """openstacksdk, which python-openstackclient brings into the venv, through the same
        catalog. Its replica calls send the service's default microversion, so the caller
        picks one that has them (with none, Manila, like shoal, answers 404 at 2.0)."""
        s = self.state

        def sdk() -> None:
            import openstack  # only in the clients' venv, which run.sh uses

            conn = openstack.connect(
                auth_url=self.url + "/identity/v3", username="admin", password=self.opts.admin_password,
                project_name="admin", user_domain_name="Default", project_domain_name="Default",
                region_name="RegionOne", shared_file_system_api_version="2.56",
            )
            sfs = conn.shared_file_system
            max_version = sfs.get_endpoint_data().max_microversion
            require(tuple(max_version) == (2, 99), f"SDK discovered max microversion {max_version}")
            names = {share.name for share in sfs.shares()}
            require(MV_SHARE in names, f"SDK lists {sorted(n for n in names if n)}")
            replica = sfs.create_share_replica(s["mv_share"], availability_zone="az2")
            self.instance_ids.add(replica.id)

            def probe() -> tuple[bool, Any]:
                current = sfs.get_share_replica(replica.id)
                require(current.status != "error", f"replica {replica.id} went to error")
                return (current.status == "available" and current.replica_state == "in_sync",
                        (current.status, current.replica_state))

            wait_for(f"SDK replica {replica.id} to be available/in_sync", probe)
            listed = {r.id for r in sfs.share_replicas(share_id=s["mv_share"])}
            require(replica.id in listed, f"SDK replica list lacks {replica.id}")
            sfs.resync_share_replica(replica.id)
            sfs.delete_share_replica(replica.id)
            self.wait_replica_gone(s["mv_share"], replica.id)

        self.step("openstacksdk 2.56: replica create, in_sync, list, resync, delete", sdk, needs=("mv_share",))

    def microversion(self, label: str, version: str | None) -> None:
        s, admin = self.state, self.admin
        name = f"microversion {label}"
        experimental = version is not None and tuple(map(int, version.split("."))) < (2, 56)

        def negotiated() -> None:
            res = admin.ok("share", "replica", "list", "--share", s["mv_share"], version=version, debug=True)
            text = res.err + res.out
            m = re.search(r"Shared File System API version: API Version Major: (\d+), Minor: (\d+)", text)
            require(m is not None, "no negotiated version in the --debug output")
            got = f"{m.group(1)}.{m.group(2)}"
            if version is None:
                requested = re.search(r"share API version (\d+\.\d+), cmd group", text)
                require(requested is not None, "no requested share API version in the --debug output")
                client_max = requested.group(1)
                require(client_max == EXPECTED_CLIENT_MAX, f"client default version {client_max}, expected {EXPECTED_CLIENT_MAX}")
                server_max = s.get("server_max") or "2.99"
                want = min(client_max, server_max, key=lambda v: tuple(map(int, v.split("."))))
            else:
                want = version
            require(got == want, f"negotiated {got}, expected {want}")
            replica_requests = [line for line in text.splitlines() if line.startswith("REQ: ") and "/share-replicas" in line]
            require(replica_requests, "no share-replicas request in the --debug output")
            for line in replica_requests:
                require(f'X-OpenStack-Manila-API-Version: {want}"' in line, f"request without version {want}: {line[:200]}")
                has_exp = re.search(r'X-OpenStack-Manila-API-Experimental: true"', line, re.I) is not None
                require(has_exp == experimental, f"experimental header {'missing' if experimental else 'sent'}: {line[:200]}")
            responses = [line for line in text.splitlines() if line.startswith("RESP: [")]
            require(responses and responses[-1].startswith("RESP: [200]"), f"last response {responses[-1:]}")
            require(f"x-openstack-manila-api-version: {want}" in responses[-1].lower(), f"response version: {responses[-1][:200]}")

        self.step(f"{name}: negotiated version and headers", negotiated, needs=("mv_share",))

        def reads() -> None:
            reps = self.replicas(s["mv_share"], version=version)
            require(len(reps) >= 1, "no replica listed")
            active = [r for r in reps.values() if r["replica_state"] == "active"]
            require(len(active) == 1, f"{len(active)} active replicas listed")
            everything = admin.json("share", "replica", "list", version=version)
            require(any(norm(r)["id"] == active[0]["id"] for r in everything), "replica list without --share misses it")
            if version == "2.11":
                return  # show needs the export-location API, which the client has from 2.47 on
            r = self.replica(active[0]["id"], version=version)
            require(r["id"] == active[0]["id"] and r["replica_state"] == "active", f"show: {r}")
            rows = admin.json("share", "replica", "export", "location", "list", active[0]["id"], version=version)
            require(len(rows) >= 1, "no export location")

        what = "replica list" if version == "2.11" else "replica list, show, export location list"
        self.step(f"{name}: {what}", reads, needs=("mv_share",))

        if label == "2.47":
            return  # 2.47 is only there for the read commands 2.11 cannot run

        def create_delete() -> None:
            rid = self.create_replica(s["mv_share"], "az2", version=version)
            self.wait_replica(s["mv_share"], rid, "available", "in_sync", version=version)
            admin.ok("share", "replica", "delete", rid, version=version)
            self.wait_replica_gone(s["mv_share"], rid, version=version)

        self.step(f"{name}: replica create, in_sync, delete", create_delete, needs=("mv_share",))

    def non_admin(self) -> None:
        s, demo = self.state, self.demo
        assert demo is not None

        def demo_share() -> None:
            created = demo.json("share", "create", "NFS", "1", "--name", DEMO_SHARE, "--share-type", REPL_TYPE,
                                "--availability-zone", "az1")
            s["demo_share"] = created["id"]
            self.wait_share_status(demo, created["id"], "available")
            reps = self.replicas(created["id"], cli=demo)
            require(len(reps) == 1, f"demo sees {len(reps)} replicas of its share")
            s["demo_replica"] = next(iter(reps))
            self.instance_ids.add(s["demo_replica"])

        self.step("non-admin: demo creates its own replicated share", demo_share, needs=("repl_type",))

        def forbidden() -> None:
            demo.fails("share", "replica", "set", s["demo_replica"], "--replica-state", "out_of_sync",
                       expect=["HTTP 403"])
            r = self.replica(s["demo_replica"])
            require(r["replica_state"] == "active", f"replica_state became {r['replica_state']}")

        self.step("non-admin: replica set --replica-state is forbidden (403)", forbidden, needs=("demo_replica",))

        def foreign_share() -> None:
            res = demo.fails("share", "replica", "create", s["share"], "--availability-zone", "az1", expect=[])
            msg = res.err.lower()
            require("no share with a name or id" in msg or "not found" in msg or "404" in msg,
                    f"not a not-found message: {stderr_tail(res.err)}")

        self.step("non-admin: replica create of another project's share is not found", foreign_share,
                  needs=("share",))

        def demo_cleanup() -> None:
            demo.ok("share", "delete", s["demo_share"])
            self.wait_share_gone(demo, s["demo_share"])

        self.step("non-admin: demo deletes its share", demo_cleanup, needs=("demo_share",))

        def quotas_by_project_name() -> None:
            # The client turns the name into an id through the identity's /v3/projects.
            admin = self.admin
            admin.ok("share", "quota", "set", "demo", "--shares", "7")
            shown = admin.json("share", "quota", "show", "demo")
            require(int(shown["shares"]) == 7, f"demo's shares quota is {shown.get('shares')}")
            # demo may read its own project's quotas (found by id: listing projects is for
            # admins) but not change them.
            project_id = demo.json("token", "issue")["project_id"]
            own = demo.json("share", "quota", "show", project_id)
            require(int(own["shares"]) == 7, f"demo sees a shares quota of {own.get('shares')}")
            demo.fails("share", "quota", "set", project_id, "--shares", "9", expect=["HTTP 403"])
            admin.ok("share", "quota", "delete", "demo")
            shown = admin.json("share", "quota", "show", "demo")
            require(int(shown["shares"]) == 50, f"after delete demo's shares quota is {shown.get('shares')}")

        self.step("quotas: admin sets and shows demo's by project name; demo may not", quotas_by_project_name)

    # -- snapshots of a replicated share (issue 10), share instances, manage and the recycle bin

    def snapshot(self, snapshot_id: str) -> dict[str, Any]:
        return self.admin.json("share", "snapshot", "show", snapshot_id)

    def wait_snapshot_status(self, snapshot_id: str, status: str) -> dict[str, Any]:
        def probe() -> tuple[bool, Any]:
            snap = self.snapshot(snapshot_id)
            require(snap["status"] not in ("error", "error_deleting"),
                    f"snapshot {snapshot_id} went to {snap['status']}")
            return snap["status"] == status, {"status": snap["status"]}

        wait_for(f"snapshot {snapshot_id} to be {status}", probe)
        return self.snapshot(snapshot_id)

    def wait_snapshot_gone(self, snapshot_id: str) -> None:
        def probe() -> tuple[bool, Any]:
            rows = {norm(r)["id"]: norm(r) for r in self.admin.json("share", "snapshot", "list", "--detail")}
            row = rows.get(snapshot_id)
            if row is None:
                return True, None
            require(row.get("status") != "error_deleting", f"snapshot {snapshot_id} went to error_deleting")
            return False, {"status": row.get("status")}

        wait_for(f"snapshot {snapshot_id} to disappear", probe)

    def snapshot_instance_path(self, instance: dict[str, Any]) -> Path:
        """The directory a snapshot instance's data is in: its export location (admin), else
        its provider location + /tree, else <pool>/snapshots/<id>/tree found under the data dir."""
        rows = [norm(r) for r in self.admin.json("share", "snapshot", "instance", "export", "location", "list",
                                                 instance["id"])]
        if rows:
            path = local_path(rows[0]["path"])
        elif instance.get("provider_location"):
            path = Path(instance["provider_location"]) / "tree"
        else:
            found = sorted(self.data_dir.glob(f"**/snapshots/{instance['id']}/tree"))
            require(len(found) == 1, f"snapshot instance {instance['id']}: {len(found)} trees under {self.data_dir}")
            path = found[0]
        require(path.name == "tree" and path.parent.name == instance["id"] and path.parent.parent.name == "snapshots",
                f"snapshot instance path {path} is not <pool>/snapshots/{instance['id']}/tree")
        require(self.data_dir in path.parents, f"snapshot path {path} is outside the data dir {self.data_dir}")
        self.pools.add(path.parent.parent.parent)
        return path

    def share_instance_ids(self, share_id: str) -> set[str]:
        rows = [norm(r) for r in self.admin.json("share", "instance", "list", "--share", share_id)]
        ids = {r["id"] for r in rows}
        self.instance_ids |= ids
        return ids

    def snapshots(self) -> None:
        s, admin = self.state, self.admin

        def snap_type() -> None:
            t = admin.json(
                "share", "type", "create", SNAP_TYPE, "False", "--snapshot-support", "True",
                "--create-share-from-snapshot-support", "True", "--revert-to-snapshot-support", "True",
                "--extra-specs", "replication_type=readable",
            )
            specs = t.get("optional_extra_specs", {})
            for key, value in (("snapshot_support", "True"), ("create_share_from_snapshot_support", "True"),
                               ("revert_to_snapshot_support", "True"), ("replication_type", "readable")):
                require(str(specs.get(key)).lower() == value.lower(), f"type extra spec {key}={specs.get(key)!r}")
            s["snap_type"] = t["id"]

        self.step("snapshots: share type with snapshot, create-from-snapshot and revert support, readable replication",
                  snap_type)

        def snap_share() -> None:
            created = admin.json("share", "create", "NFS", "1", "--name", SNAP_SHARE, "--share-type", SNAP_TYPE,
                                 "--availability-zone", "az1")
            share = self.wait_share_status(admin, created["id"], "available")
            for field in ("snapshot_support", "create_share_from_snapshot_support", "revert_to_snapshot_support"):
                require(share.get(field) is True, f"share {field}={share.get(field)!r}")
            s["snap_share"] = share["id"]
            (active,) = self.replicas(share["id"])
            self.instance_ids.add(active)
            path = self.share_export_path(share["id"])
            write_test_data(path)
            s["snap_v1"] = tree(path)
            s["snap_share_path"] = path
            s["snap_active"] = active

        self.step("snapshots: replicated share in az1 with files", snap_share, needs=("snap_type",))

        def snap_replica() -> None:
            rid = self.create_replica(s["snap_share"], "az2")
            self.wait_replica(s["snap_share"], rid, "available", "in_sync")
            path = self.replica_export_path(rid)
            self.wait_tree("the replica to hold the share's files", path, s["snap_v1"])
            s["snap_replica"] = rid
            s["snap_replica_path"] = path

        self.step("snapshots: replica in az2 becomes in_sync with the files", snap_replica, needs=("snap_v1",))

        def create_snapshot() -> None:
            created = admin.json("share", "snapshot", "create", SNAP_SHARE, "--name", SNAPSHOT,
                                 "--description", "e2e snapshot of a replicated share")
            require(created.get("share_id") == s["snap_share"], f"create answered share_id {created.get('share_id')}")
            s["snapshot"] = created["id"]
            snap = self.wait_snapshot_status(created["id"], "available")
            for field, value in (("name", SNAPSHOT), ("share_id", s["snap_share"]), ("size", 1), ("share_size", 1),
                                 ("share_proto", "NFS")):
                require(snap.get(field) == value, f"show {field}={snap.get(field)!r}, expected {value!r}")
            listed = {norm(r)["id"]: norm(r) for r in admin.json("share", "snapshot", "list")}
            require(listed.get(created["id"], {}).get("name") == SNAPSHOT, f"snapshot list: {listed}")
            by_share = [norm(r)["id"] for r in admin.json("share", "snapshot", "list", "--share", s["snap_share"])]
            require(by_share == [created["id"]], f"snapshot list --share: {by_share}")
            # The share is available again (not busy) once its snapshot is.
            share = self.share(admin, s["snap_share"])
            require(share["status"] == "available", f"share status {share['status']}")

        self.step("snapshots: snapshot create, show (available), list, list --share", create_snapshot,
                  needs=("snap_replica",))

        def snapshot_instances() -> None:
            rows = [norm(r) for r in admin.json("share", "snapshot", "instance", "list", "--snapshot", s["snapshot"],
                                                "--detailed")]
            by_instance = {r["share_instance_id"]: r for r in rows}
            want = {s["snap_active"], s["snap_replica"]}
            require(set(by_instance) == want and len(rows) == 2,
                    f"snapshot instances on share instances {sorted(by_instance)}, expected {sorted(want)}")
            everything = {norm(r)["id"] for r in admin.json("share", "snapshot", "instance", "list")}
            require({r["id"] for r in rows} <= everything, "snapshot instance list without --snapshot misses some")
            instances = {}
            for share_instance, row in by_instance.items():
                def available(row_id: str = row["id"]) -> tuple[bool, Any]:
                    shown = admin.json("share", "snapshot", "instance", "show", row_id)
                    seen = {"status": shown["status"], "progress": shown.get("progress")}
                    return shown["status"] == "available", seen

                wait_for(f"snapshot instance {row['id']} to be available", available)
                shown = admin.json("share", "snapshot", "instance", "show", row["id"])
                for field, value in (("snapshot_id", s["snapshot"]), ("share_instance_id", share_instance),
                                     ("share_id", s["snap_share"]), ("progress", "100%")):
                    require(shown.get(field) == value, f"instance {row['id']} {field}={shown.get(field)!r}")
                instances[share_instance] = shown
                self.instance_ids.add(row["id"])
            s["snap_instances"] = instances

        self.step("snapshots: snapshot instance list/show (admin): one available instance per replica",
                  snapshot_instances, needs=("snapshot",))

        def on_disk() -> None:
            paths = {si: self.snapshot_instance_path(inst) for si, inst in s["snap_instances"].items()}
            active, secondary = paths[s["snap_active"]], paths[s["snap_replica"]]
            require(active.parent.parent != secondary.parent.parent,
                    f"active's and secondary's snapshot instances in the same pool: {active}, {secondary}")
            for who, path in (("active", active), ("secondary", secondary)):
                diff = tree_diff(s["snap_v1"], tree(path))
                require(not diff, f"the {who}'s snapshot instance {path} differs from the share when snapped: {diff}")
            s["snap_paths"] = paths

        self.step("snapshots: the active's and the secondary's snapshot instances hold the snapshot's files",
                  on_disk, needs=("snap_instances",))

        def write_after() -> None:
            modify_test_data(s["snap_share_path"])
            s["snap_v2"] = tree(s["snap_share_path"])
            require(tree_diff(s["snap_v1"], s["snap_v2"]), "the writes changed nothing")
            for path in s["snap_paths"].values():
                diff = tree_diff(s["snap_v1"], tree(path))
                require(not diff, f"snapshot {path} changed with the share: {diff}")

        self.step("snapshots: writes to the share after the snapshot leave the snapshot unchanged", write_after,
                  needs=("snap_paths",))

        def from_snapshot() -> None:
            created = admin.json("share", "create", "NFS", "1", "--name", FROM_SNAPSHOT, "--snapshot-id",
                                 s["snapshot"])
            s["from_snapshot"] = created["id"]
            share = self.wait_share_status(admin, created["id"], "available")
            require(share.get("snapshot_id") == s["snapshot"], f"snapshot_id {share.get('snapshot_id')!r}")
            require(share.get("share_type_name") == SNAP_TYPE, f"share type {share.get('share_type_name')!r}")
            require(share.get("availability_zone") == "az1", f"availability zone {share.get('availability_zone')!r}")
            self.share_instance_ids(created["id"])
            path = self.share_export_path(created["id"])
            require(path != s["snap_share_path"], "the new share exports its parent's directory")
            diff = tree_diff(s["snap_v1"], tree(path))
            require(not diff, f"share from the snapshot differs from the snapshot: {diff}")
            s["from_snapshot_path"] = path

        self.step("snapshots: share create --snapshot-id holds the snapshot's files, not the later writes",
                  from_snapshot, needs=("snap_v2",))

        def revert() -> None:
            admin.ok("share", "revert", s["snapshot"])
            self.wait_share_status(admin, s["snap_share"], "available")
            diff = tree_diff(s["snap_v1"], tree(s["snap_share_path"]))
            require(not diff, f"after revert the share differs from the snapshot: {diff}")
            snap = self.snapshot(s["snapshot"])
            require(snap["status"] == "available", f"snapshot status after revert {snap['status']}")
            # The secondary follows the reverted active.
            self.wait_tree("the secondary to get the reverted files", s["snap_replica_path"], s["snap_v1"])
            self.wait_replica(s["snap_share"], s["snap_replica"], "available", "in_sync")

        self.step("snapshots: share revert restores the share's files (and the secondary's)", revert,
                  needs=("snap_v2",))

        def instances() -> None:
            ids = self.share_instance_ids(s["snap_share"])
            require(ids == {s["snap_active"], s["snap_replica"]}, f"share instance list --share: {sorted(ids)}")
            everything = {norm(r)["id"] for r in admin.json("share", "instance", "list")}
            require(ids <= everything, "share instance list without --share misses the share's instances")
            shown = admin.json("share", "instance", "show", s["snap_replica"])
            for field, value in (("share_id", s["snap_share"]), ("status", "available"), ("replica_state", "in_sync"),
                                 ("availability_zone", "az2")):
                require(shown.get(field) == value, f"instance show {field}={shown.get(field)!r}, expected {value!r}")
            rows = [norm(r) for r in admin.json("share", "instance", "export", "location", "list", s["snap_active"])]
            require(split_locations(rows, s["snap_active"]) == s["snap_share_path"],
                    f"active instance export locations {[r['path'] for r in rows]}")
            rows = [norm(r) for r in admin.json("share", "instance", "export", "location", "list", s["snap_replica"])]
            require(split_locations(rows, s["snap_replica"]) == s["snap_replica_path"],
                    f"replica instance export locations {[r['path'] for r in rows]}")

        self.step("share instance list, show, export location list", instances, needs=("snap_replica",))

        def delete_snapshot() -> None:
            admin.ok("share", "snapshot", "delete", s["snapshot"])
            self.wait_snapshot_gone(s["snapshot"])
            s["snapshot_deleted"] = True
            for path in s.get("snap_paths", {}).values():
                self.wait_path_gone(path.parent)
            left = [norm(r)["id"] for r in admin.json("share", "snapshot", "instance", "list")
                    if norm(r)["id"] in self.instance_ids]
            require(not left, f"snapshot instances still listed: {left}")

        self.step("snapshots: snapshot delete removes every snapshot instance and its directory", delete_snapshot,
                  needs=("snapshot",))

    def lifecycle(self) -> None:
        """Manage/unmanage (`share abandon` / `share adopt`) on the local back end, and the
        recycle bin (`share delete --soft`, `share restore`), with the share from the snapshot."""
        s, admin = self.state, self.admin

        def abandon() -> None:
            share = self.share(admin, s["from_snapshot"])
            s["adopt_host"] = share["host"]
            admin.ok("share", "abandon", s["from_snapshot"])
            self.wait_share_gone(admin, s["from_snapshot"])
            s["from_snapshot"] = None
            # Manila's unmanage leaves the data at its export location.
            kept = s["from_snapshot_path"]
            self.wait_tree("the abandoned share's files to stay at its export path", kept, s["snap_v1"])
            require(not os.path.lexists(f"{kept}.meta.json"), f"{kept}.meta.json is still there")
            s["unmanaged_path"] = kept

        self.step("manage: share abandon keeps the files at the export path", abandon,
                  needs=("from_snapshot_path",))

        def adopt() -> None:
            host = s["adopt_host"].split("@")[0]
            created = admin.json("share", "adopt", s["adopt_host"], "NFS", f"local://{host}{s['unmanaged_path']}",
                                 "--name", ADOPTED, "--share-type", SNAP_TYPE)
            s["adopted"] = created["id"]
            share = self.wait_share_status(admin, created["id"], "available")
            require(share.get("size") == 1, f"adopted share size {share.get('size')!r}")
            self.share_instance_ids(created["id"])
            path = self.share_export_path(created["id"])
            diff = tree_diff(s["snap_v1"], tree(path))
            require(not diff, f"the adopted share's files differ: {diff}")
            require(not os.path.lexists(s["unmanaged_path"]), f"{s['unmanaged_path']} is still there")

        self.step("manage: share adopt takes the abandoned directory back, same files", adopt,
                  needs=("unmanaged_path",))

        def recycle_bin() -> None:
            share_id = s["adopted"]
            admin.ok("share", "delete", "--soft", share_id)
            listed = {norm(r)["id"] for r in admin.json("share", "list")}
            require(share_id not in listed, "a soft-deleted share is still in `share list`")
            binned = {norm(r)["id"] for r in admin.json("share", "list", "--soft-deleted")}
            require(share_id in binned, "`share list --soft-deleted` misses the share")
            shown = self.share(admin, share_id)
            require(shown.get("is_soft_deleted") is True, f"is_soft_deleted {shown.get('is_soft_deleted')!r}")
            require(shown.get("scheduled_to_be_deleted_at"), "no scheduled_to_be_deleted_at")
            admin.ok("share", "restore", share_id)  # by id: the client does not look names up here
            shown = self.share(admin, share_id)
            require(shown.get("is_soft_deleted") is False,
                    f"after restore is_soft_deleted {shown.get('is_soft_deleted')!r}")
            listed = {norm(r)["id"] for r in admin.json("share", "list")}
            require(share_id in listed, "a restored share is not in `share list`")

        self.step("recycle bin: share delete --soft, list --soft-deleted, restore", recycle_bin, needs=("adopted",))

    def wait_share_gone(self, cli: Openstack, share_id: str) -> None:
        def probe() -> tuple[bool, Any]:
            rows = {norm(r)["id"]: norm(r) for r in cli.json("share", "list")}
            row = rows.get(share_id)
            if row is None:
                return True, None
            require(row["status"] != "error_deleting", f"share {share_id} went to error_deleting")
            return False, {"status": row["status"]}

        wait_for(f"share {share_id} to disappear", probe)

    def cleanup(self) -> None:
        s, admin = self.state, self.admin

        def delete_shares() -> None:
            problems = []
            if s.get("snapshot") and not s.get("snapshot_deleted"):
                try:  # a share with a snapshot cannot be deleted
                    admin.ok("share", "snapshot", "delete", s["snapshot"])
                    self.wait_snapshot_gone(s["snapshot"])
                except StepFailure as exc:
                    problems.append(f"snapshot: {exc}")
            for key in ("share", "mv_share", "plain_share", "snap_share", "from_snapshot", "adopted"):
                share_id = s.get(key)
                if share_id is None:
                    continue
                try:
                    for rid, r in self.replicas(share_id).items():
                        self.instance_ids.add(rid)
                        if r["replica_state"] != "active":
                            admin.ok("share", "replica", "delete", rid)
                            self.wait_replica_gone(share_id, rid)
                    admin.ok("share", "delete", share_id)
                    self.wait_share_gone(admin, share_id)
                except StepFailure as exc:
                    problems.append(f"{key}: {exc}")
            require(not problems, "; ".join(problems))
            s["shares_deleted"] = True

        self.step("cleanup: delete the shares (replicas first)", delete_shares)

        def dirs_gone() -> None:
            def leftovers() -> tuple[bool, Any]:
                found = []
                for pool_dir in self.pools:
                    for sub in ("shares", "replicas", "snapshots", "unmanaged"):
                        for entry in (pool_dir / sub).glob("*") if (pool_dir / sub).is_dir() else []:
                            if any(i in entry.name for i in self.instance_ids):
                                found.append(str(entry))
                return not found, found[:5]

            require(self.instance_ids and self.pools, "no share instance or pool was seen")
            wait_for("the share and replica directories to be removed", leftovers)

        self.step("cleanup: the share, replica and snapshot directories are gone", dirs_gone, needs=("shares_deleted",))

        def delete_types() -> None:
            types = ((REPL_TYPE, "repl_type"), (PLAIN_TYPE, "plain_type"), (SNAP_TYPE, "snap_type"))
            names = [n for n, key in types if s.get(key)]
            require(names, "no share type was created")
            admin.ok("share", "type", "delete", *names)
            left = {t["Name"] for t in admin.json("share", "type", "list")} & set(names)
            require(not left, f"types still listed: {sorted(left)}")

        self.step("cleanup: delete the share types", delete_types, needs=("shares_deleted",))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--openstack", required=True, help="path of the `openstack` CLI")
    parser.add_argument("--url", required=True, help="shoal's base URL, http://127.0.0.1:PORT")
    parser.add_argument("--mode", required=True, choices=["noauth", "builtin"])
    parser.add_argument("--data-dir", required=True, help="shoal's data directory")
    parser.add_argument("--admin-password", help="builtin mode: password of user admin")
    parser.add_argument("--demo-password", help="builtin mode: password of user demo (project demo, role member)")
    parser.add_argument("--flow", choices=["subset", "full"],
                        help="full: every step; subset: the basic flow (default: full for builtin, subset for noauth)")
    opts = parser.parse_args()
    if opts.mode == "builtin" and not (opts.admin_password and opts.demo_password):
        parser.error("--mode builtin needs --admin-password and --demo-password")
    if opts.flow is None:
        opts.flow = "full" if opts.mode == "builtin" else "subset"
    return E2E(opts).run()


if __name__ == "__main__":
    sys.exit(main())
