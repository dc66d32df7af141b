"""The expand/contract gate (manage.py lint_migrations, run by scripts/test and by
scripts/deploy before any migration): it fails on a migration the running release
could not survive, and passes additive ones. Run in the app image against migration
folders made here."""

import shutil

import docker
import pytest
from stack import ROOT

pytestmark = pytest.mark.deploy

HEAD = '''from django.db import migrations, models


class Migration(migrations.Migration):
{extra}    dependencies = [("board", "0002_idempotencyrecord")]
    operations = [{operation}]
'''

CASES = {
    "drops a column": ('migrations.RemoveField("message", "text")', False),
    "renames a column": ('migrations.RenameField("message", "text", "body")', False),
    "adds NOT NULL without a database default": (
        'migrations.AddField("message", "score", models.IntegerField(default=0))', False),
    "runs SQL it cannot read": ('migrations.RunSQL("UPDATE board_message SET text = upper(text)")', False),
    "adds a nullable column": ('migrations.AddField("message", "note", models.TextField(null=True))', True),
    "adds NOT NULL with a database default": (
        'migrations.AddField("message", "score", models.IntegerField(db_default=0))', True),
    "adds a table": ('migrations.CreateModel("Tag", [("id", models.BigAutoField(primary_key=True))])', True),
}


def lint(folder):
    client = docker.from_env()
    try:
        output = client.containers.run(
            "djangostack/app:latest", ["python", "manage.py", "lint_migrations"], remove=True, network_mode="none",
            environment={"DJANGO_SECRET_KEY": "lint-only"}, stderr=True,
            volumes={str(folder): {"bind": "/app/board/migrations", "mode": "ro"}})
        return 0, output.decode()
    except docker.errors.ContainerError as exc:
        return exc.exit_status, exc.stderr.decode() if exc.stderr else str(exc)


@pytest.mark.parametrize("case", CASES)
def test_gate(case, tmp_path):
    operation, allowed = CASES[case]
    folder = tmp_path / "migrations"
    shutil.copytree(ROOT / "app/board/migrations", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "0003_change.py").write_text(HEAD.format(extra="", operation=operation))
    code, output = lint(folder)
    if allowed:
        assert code == 0, output
    else:
        assert code != 0 and "0003_change" in output and "expand/contract" in output, output


def test_a_contract_step_passes_once_it_says_why(tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(ROOT / "app/board/migrations", folder, ignore=shutil.ignore_patterns("__pycache__"))
    extra = '    expand_contract = "text has been unused since the release before this one"\n'
    (folder / "0003_change.py").write_text(HEAD.format(extra=extra, operation=CASES["drops a column"][0]))
    code, output = lint(folder)
    assert code == 0, output
