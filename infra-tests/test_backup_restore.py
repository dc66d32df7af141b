"""Backups that provably restore: WAL archived continuously by pgBackRest, restores
driven by scripts/restore while keyed writes flow, every write audited afterwards.

These tests replace the test stack's database (conftest.py runs them after every
other test). Each leaves the stack healthy, holding every write acknowledged before
its fault; the volumes scripts/restore moved aside are checked, then removed.
Numbers go to reports/backup/<test>.json."""

import json
import os
import re
import subprocess
import time
from datetime import datetime

import pytest
from stack import PROJECT, ROOT, compose
from traffic import Traffic, Writer

REPORTS = ROOT / "infra-tests" / "reports" / "backup"
DATA_VOLUME = f"{PROJECT}_db-data"
# N, the loss window: archive_timeout closes a WAL segment at most that long after a
# write, then archive-push needs a moment (well under a second here) and the
# checkpointer checks the timeout once a second. README.md states N the same way.
ARCHIVE_PUSH_ALLOWANCE = 5.0

pytestmark = pytest.mark.backup


def script(name, *args, timeout=900):
    """scripts/<name> against the test project; output kept for the report and assertions."""
    result = subprocess.run([str(ROOT / "scripts" / name), *args], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "COMPOSE_PROJECT_NAME": PROJECT})
    result.output = result.stdout + result.stderr
    return result


def backup_health(stack):
    (container,) = stack.containers("backup") or [None]
    if container is None:
        return "absent", ""
    state = stack.docker.api.inspect_container(container.id)["State"].get("Health", {})
    log = state.get("Log") or [{}]
    return state.get("Status"), (log[-1].get("Output") or "").strip()


def wait_backup_health(stack, wanted, timeout):
    deadline = time.monotonic() + timeout
    status = output = None
    while time.monotonic() < deadline:
        status, output = backup_health(stack)
        if status == wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"backup service not {wanted} within {timeout} s: {status} ({output})")


def archive_timeout(stack):
    return int(stack.sql("SELECT setting FROM pg_settings WHERE name = 'archive_timeout'"))


def rows_by_text(stack, prefix):
    found = {}
    for line in stack.sql(f"SELECT id, text FROM board_message WHERE text LIKE '{prefix}%'").splitlines():
        if "\t" in line:
            ident, text = line.split("\t", 1)
            found.setdefault(text, []).append(int(ident))
    return found


def aside_volume(output):
    match = re.search(r"now in volume (\S+)", output)
    return match.group(1) if match else None


def save_report(name, report, progress):
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    progress(f"[{name}] " + ", ".join(f"{k}={v}" for k, v in report.items() if not isinstance(v, (list, dict))))


@pytest.fixture(scope="module", autouse=True)
def no_leftover_aside_volumes(stack):
    """Volumes an interrupted earlier run moved aside (this project's only)."""
    for volume in stack.docker.volumes.list(filters={"label": f"org.djangostack.before-restore-of={DATA_VOLUME}"}):
        volume.remove()
    yield


def test_restore_refuses_targets_the_repository_cannot_reach(stack):
    db_before = stack.container("db").id
    for target, expected in (("2000-01-01T00:00:00Z", "oldest backup ended at"),
                             ("2999-01-01T00:00:00Z", "is in the future"),
                             ("yesterday-ish", "cannot read")):
        result = script("restore", "--time", target, "--yes")
        assert result.returncode != 0, result.output
        assert expected in result.output, result.output
    # Refused before anything was touched: same database container, app tier still up.
    assert stack.container("db").id == db_before
    stack.wait_healthy("wsgi", 2, timeout=10)


def test_broken_archive_destination_is_seen_while_the_site_serves_and_heals_without_gap(stack, ca_file, progress):
    wait_backup_health(stack, "healthy", 180)
    check = script("backup", "--check")
    assert check.returncode == 0, check.output
    archive_dirs = ["find", "/var/lib/pgbackrest/archive", "-type", "d", "-exec", "chmod"]
    with Traffic(ca_file, min_requests=1, max_seconds=200, progress=progress, label="archive-broken") as traffic, \
            Writer(ca_file, "archive-broken") as writer:
        time.sleep(2)
        # The repository becomes unwritable (as with a full or read-only disk).
        code, out = stack.exec("db", [*archive_dirs, "u-w", "{}", "+"])
        assert code == 0, out
        broken_at = time.time()
        try:
            wait_backup_health(stack, "unhealthy", 60)
            unhealthy_after = time.time() - broken_at
            _, health_output = backup_health(stack)
            failed_wal = stack.sql("SELECT last_failed_wal FROM pg_stat_archiver")
            broken_check = script("backup", "--check")
        finally:
            code, out = stack.exec("db", [*archive_dirs, "u+w", "{}", "+"])
            assert code == 0, out
        fixed_at = time.time()
        wait_backup_health(stack, "healthy", 120)
        healthy_after_fix = time.time() - fixed_at
        time.sleep(2)
        records = traffic.stop(wait_for_minimum=False)
        writes = writer.stop()

    assert "FAILING" in health_output, health_output
    assert broken_check.returncode != 0, broken_check.output
    assert "FAILING" in broken_check.output, broken_check.output
    failed = [r for r in records if not r.ok]
    acked = [w for w in writes if w.message_id]
    in_db = rows_by_text(stack, "w-archive-broken-")
    lost = [w.key for w in acked if w.message_id not in in_db.get(w.key, [])]
    duplicated = [text for text, ids in in_db.items() if len(ids) > 1]
    healed = script("backup", "--check")
    listing = stack.exec("backup", ["pgbackrest", "--stanza=main", "--log-level-console=warn", "repo-ls",
                                    "archive/main", "--recurse", "--output=json"])[1]
    report = {
        "requests": len(records), "requests_failed": len(failed), "writes_sent": len(writes),
        "writes_acknowledged": len(acked), "writes_lost": len(lost), "writes_duplicated": len(duplicated),
        "unhealthy_after_s": round(unhealthy_after, 1), "healthy_after_fix_s": round(healthy_after_fix, 1),
        "wal_that_failed": failed_wal, "check_while_broken_exit": broken_check.returncode,
        "check_after_fix_exit": healed.returncode,
    }
    save_report("archive-broken", report, progress)
    assert len(records) > 100 and not failed, [r.as_dict() for r in failed[:5]]  # the site kept serving
    assert acked and len(acked) == len(writes) and not lost and not duplicated, report
    # Archiving resumed with the segment that had failed, and no segment is missing.
    assert healed.returncode == 0 and "no gap" in healed.output, healed.output
    assert re.fullmatch(r"[0-9A-F]{24}", failed_wal) and f"/{failed_wal}-" in listing, failed_wal


def test_point_in_time_restore_undoes_a_bulk_delete(stack, ca_file, progress):
    backup = script("backup")  # a full backup now: the restore starts from it
    assert backup.returncode == 0, backup.output
    with Writer(ca_file, "pitr") as writer:
        time.sleep(6)
        # The "bad" bulk delete at T: T read from PostgreSQL's clock just before it.
        code, out = stack.exec("db", ["psql", "-U", "app", "-d", "app", "-XtA", "-c",
                                      "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                                      "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                                      "-c", "DELETE FROM board_message WHERE text LIKE 'w-pitr-%'"])
        assert code == 0, out
        target, deleted = out.split()[0], out.split()[-1]
        time.sleep(4)  # writes after T
        writes = writer.stop()
    # A scheduled backup that ran after the bad delete: the restore must start from an older one.
    late = script("backup", "--type", "diff")
    assert late.returncode == 0, late.output
    code, info = stack.exec("backup", ["pgbackrest", "--stanza=main", "--log-level-console=warn", "info",
                                       "--output=json"])
    assert code == 0, info
    late_label = json.loads(info)[0]["backup"][-1]["label"]
    target_epoch = datetime.fromisoformat(target.replace("Z", "+00:00")).timestamp()
    before = [w for w in writes if w.message_id and w.acknowledged_at < target_epoch]
    after = [w for w in writes if w.first_sent > target_epoch]
    assert len(before) >= 20 and len(after) >= 10, (len(before), len(after))
    assert not set(rows_by_text(stack, "w-pitr-")) & {w.key for w in before}, "the bulk delete did not happen"

    started = time.monotonic()
    result = script("restore", "--time", target, "--yes")
    restore_s = time.monotonic() - started
    assert result.returncode == 0, result.output
    in_db = rows_by_text(stack, "w-pitr-")
    missing = [w.key for w in before if w.message_id not in in_db.get(w.key, [])]
    came_back_from_after_t = [w.key for w in after if w.key in in_db]
    duplicated = [text for text, ids in in_db.items() if len(ids) > 1]
    aside = aside_volume(result.output)
    report = {
        "target": target, "rows_deleted_at_t": int(deleted) if deleted.isdigit() else deleted,
        "writes_acknowledged_before_t": len(before), "writes_sent_after_t": len(after),
        "missing_before_t": len(missing), "present_from_after_t": len(came_back_from_after_t),
        "duplicated": len(duplicated), "restore_s": round(restore_s, 1), "moved_aside_to": aside,
    }
    save_report("point-in-time", report, progress)
    assert not missing and not came_back_from_after_t and not duplicated, report
    assert f"backup {late_label}" not in result.output, result.output
    # The previous data was moved aside, not deleted: its volume holds a cluster.
    assert aside and aside.startswith(f"{DATA_VOLUME}-before-restore-"), result.output
    volume = stack.docker.volumes.get(aside)
    listing = stack.docker.containers.run("djangostack/db:latest", ["ls", "/v"], entrypoint=[], remove=True,
                                          user="999", network_mode="none", read_only=True, cap_drop=["ALL"],
                                          volumes={aside: {"bind": "/v", "mode": "ro"}}).decode()
    assert "PG_VERSION" in listing.split(), listing
    volume.remove()
    assert_site_writes_and_archives(stack, ca_file, progress)


def test_disk_loss_restore_latest_keeps_every_write_older_than_the_loss_window(stack, ca_file, progress):
    wait_backup_health(stack, "healthy", 180)
    window = archive_timeout(stack) + ARCHIVE_PUSH_ALLOWANCE
    with Writer(ca_file, "disk-loss") as writer:
        time.sleep(max(2 * window, 15))
        # The disk is lost: PostgreSQL dies at once, its volume is destroyed.
        stack.container("db").kill()
        lost_at = time.time()
        compose("rm", "--force", "--stop", "db", "backup")
        stack.docker.volumes.get(DATA_VOLUME).remove()
        started = time.monotonic()
        result = script("restore", "--latest", "--yes")
        restore_s = time.monotonic() - started
        restored_at = time.time()
        time.sleep(3)  # writes flow again after the restore
        writes = writer.stop()
    assert result.returncode == 0, result.output
    assert "nothing to move aside" in result.output, result.output

    acked = [w for w in writes if w.message_id]
    in_db = rows_by_text(stack, "w-disk-loss-")
    lost = [w for w in acked if w.message_id not in in_db.get(w.key, [])]
    duplicated = [text for text, ids in in_db.items() if len(ids) > 1]
    old_enough = [w for w in acked if w.acknowledged_at < lost_at - window]
    lost_old = [w.key for w in old_enough if w.message_id not in in_db.get(w.key, [])]
    after_restore = [w for w in acked if w.acknowledged_at > restored_at]
    loss_window = round(lost_at - min(w.acknowledged_at for w in lost), 2) if lost else 0.0
    report = {
        "archive_timeout_s": archive_timeout(stack), "n_s": window,
        "writes_sent": len(writes), "writes_acknowledged": len(acked),
        "acknowledged_more_than_n_before_loss": len(old_enough), "lost_of_those": len(lost_old),
        "writes_lost": len(lost), "writes_duplicated": len(duplicated),
        "measured_loss_window_s": loss_window, "restore_s": round(restore_s, 1),
        "acknowledged_after_restore": len(after_restore),
    }
    save_report("disk-loss", report, progress)
    assert len(old_enough) >= 50, report  # the test tested something
    assert not lost_old and not duplicated, report
    assert loss_window <= window, report
    assert after_restore and all(w.key in in_db for w in after_restore), report
    assert_site_writes_and_archives(stack, ca_file, progress)


def assert_site_writes_and_archives(stack, ca_file, progress):
    """After a restore: the site takes a write, the backup service is healthy and the
    archive continues on the new timeline without a gap."""
    stack.wait_healthy("wsgi", 2)
    stack.wait_healthy("asgi", 2)
    with stack.site.session(ca_file) as session:
        created = session.post(f"{stack.site.base_url}/api/messages", json={"text": "after the restore"}, timeout=10)
        assert created.status_code == 201, created.text
    wait_backup_health(stack, "healthy", 180)
    check = script("backup", "--check")
    assert check.returncode == 0 and "no gap" in check.output, check.output
