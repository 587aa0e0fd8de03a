"""Summarises one tempest run from its subunit v2 stream (`tempest run --subunit`).

    python summarize.py RUN.subunit OUT_DIR

Writes OUT_DIR/failed.txt (one test id a line), OUT_DIR/skipped.txt (test id and reason),
OUT_DIR/failures.txt (each failure with the tail of its traceback), prints the failures
with a short reason, and the skips of tempest's @unstable_test (failures it reports as
skips), the counts of the replication modules (`test_replication*`, `admin.test_replication*`),
and ends with the line `N passed, N failed, N skipped`.

A test still in progress when the stream ends (the run was cut by its timeout) counts as
failed, so a hung run cannot look green. A class whose setUpClass failed appears as the
test id `setUpClass (module.Class)` and counts as one failure, as tempest counts it.
"""

import os
import sys

import subunit
import testtools

PASSED = {"success", "xfail"}
SKIPPED = {"skip"}
# Module prefix shared by test_replication*.py and admin/test_replication*.py.
REPLICATION = ".test_replication"


def detail_text(details, name):
    content = details.get(name)
    if content is None:
        return ""
    try:
        return b"".join(content.iter_bytes()).decode("utf-8", "replace")
    except Exception as exc:  # a malformed attachment must not hide the count
        return "<unreadable %s: %s>" % (name, exc)


def main():
    stream_path, out_dir = sys.argv[1], sys.argv[2]
    tests = {}

    def on_test(test):
        tests[test["id"]] = test

    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    with open(stream_path, "rb") as stream:
        subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout").run(result)
    result.stopTestRun()

    passed, failed, skipped = [], [], []
    for test_id, test in sorted(tests.items()):
        # tempest's per-worker bookkeeping ids, not tests.
        if test_id in ("process-returncode",) and test["status"] in PASSED:
            continue
        status = test["status"]
        if status == "exists":
            # Listed, never started: its class's setUpClass failed (counted once, as
            # tempest does) or the run was cut (run.sh counts that).
            continue
        if status in PASSED:
            passed.append(test_id)
        elif status in SKIPPED:
            skipped.append((test_id, detail_text(test["details"], "reason").strip()))
        else:
            failed.append((test_id, status, detail_text(test["details"], "traceback")))

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "failed.txt"), "w") as f:
        for test_id, _, _ in failed:
            f.write(test_id + "\n")
    with open(os.path.join(out_dir, "skipped.txt"), "w") as f:
        for test_id, reason in skipped:
            f.write("%s  # %s\n" % (test_id, reason.replace("\n", " ")))
    with open(os.path.join(out_dir, "failures.txt"), "w") as f:
        for test_id, status, traceback in failed:
            f.write("=== %s (%s)\n%s\n" % (test_id, status, traceback.strip() or "<no traceback>"))

    for test_id, status, traceback in failed:
        lines = [line for line in traceback.strip().splitlines() if line.strip()]
        why = lines[-1].strip() if lines else status
        print("FAIL %s: %s" % (test_id, why[:300]))
    # tempest's @unstable_test turns a failure into a skip: show those, they may hide a bug.
    for test_id, reason in skipped:
        if reason.startswith("Marked as unstable"):
            print("UNSTABLE (counted as skipped) %s: %s" % (test_id, reason[:300].replace("\n", " ")))
    # The replication modules alone, the figure the issue compares with Manila's.
    def replication(ids):
        return sum(1 for test_id in ids if REPLICATION in test_id)

    print("replication modules: %d passed, %d failed, %d skipped" % (
        replication(passed), replication(t[0] for t in failed), replication(t[0] for t in skipped)))
    print("%d passed, %d failed, %d skipped" % (len(passed), len(failed), len(skipped)))


if __name__ == "__main__":
    main()
