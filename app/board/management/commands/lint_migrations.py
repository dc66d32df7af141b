"""Fails on a migration that the release before it could not run against (expand/contract).

During a deploy the old release keeps serving while the new one's migrations run, so every
migration must leave a schema the old code still works with: add nullable columns, new
tables, columns with a database default; never drop, rename or retype what the old code
reads in the same release. A contract step (dropping a column nothing has used for a
release) is fine, but must say so: give its Migration class an `expand_contract` attribute
with the reason, and this check lets it pass.

Hand-written rather than django-migration-linter: that linter renders each migration's SQL
and so needs a live database connection (it fails with OperationalError without one), while
this reads the operations themselves through Django's migration loader, with no database, so
it runs as a gate before anything starts."""

from django.core.management.base import BaseCommand, CommandError
from django.db import migrations
from django.db.migrations.loader import MigrationLoader
from django.db.models import NOT_PROVIDED

# Operations that change or remove what the previous release's code reads or writes.
BREAKING = {
    migrations.RemoveField: "drops a column the previous release still reads",
    migrations.DeleteModel: "drops a table the previous release still uses",
    migrations.RenameField: "renames a column the previous release still reads",
    migrations.RenameModel: "renames a table the previous release still uses",
    migrations.AlterModelTable: "moves a table the previous release still uses",
    migrations.AlterField: "changes a column's type or constraints under the previous release",
    migrations.RunSQL: "runs SQL this check cannot read",
    migrations.RunPython: "runs code this check cannot read",
}


def problem(operation):
    for kind, why in BREAKING.items():
        if isinstance(operation, kind):
            return why
    if isinstance(operation, migrations.AddField):
        field = operation.field
        # Django's `default` lives in Python only: the previous release's INSERTs omit the
        # column, so a NOT NULL column needs a default in the database (db_default).
        if not field.null and field.db_default is NOT_PROVIDED and not field.many_to_many:
            return ("adds a NOT NULL column without a database default (db_default), "
                    "which the previous release's inserts lack")
    return None


class Command(BaseCommand):
    help = "Fail on migrations that break the expand/contract rule (see README: Deploying a new version)."

    def add_arguments(self, parser):
        parser.add_argument("--app", action="append", help="only these apps (default: the project's own)")

    def handle(self, *args, **options):
        loader = MigrationLoader(None, ignore_no_migrations=True)  # None: no database needed
        apps = options["app"] or ["board"]
        found, checked = [], 0
        for (app, name), migration in sorted(loader.disk_migrations.items()):
            if app not in apps:
                continue
            checked += 1
            if getattr(migration, "expand_contract", None):
                continue  # a contract step, acknowledged with its reason
            if migration.initial:
                continue  # creates the app's tables: no previous release used them
            for operation in migration.operations:
                why = problem(operation)
                if why:
                    found.append(f"{app}.{name}: {operation.describe()}: {why}")
        if found:
            raise CommandError(
                "migrations the previous release cannot run against (expand/contract; see README):\n  "
                + "\n  ".join(found)
                + "\nSplit the change over releases, or give a contract step's Migration an `expand_contract` reason."
            )
        self.stdout.write(f"expand/contract: {checked} migrations checked, none breaks the previous release")
