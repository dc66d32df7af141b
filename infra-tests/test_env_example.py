"""The settings a user may change are listed once per place they read them: compose.yaml
reads them, .env.example gives each with its default, README.md's table explains them.
The three must agree. And the README's secrets snippet works under a strict umask."""

import re
import stat
import subprocess

from stack import ROOT

README = (ROOT / "README.md").read_text()


def compose_variables():
    """NAME -> default ('' when none) for every ${NAME...} in the top-level compose files."""
    found = {}
    for path in sorted(ROOT.glob("compose*.yaml")):
        for name, default in re.findall(r"\$\{([A-Z][A-Z0-9_]*)(?::?-([^}]*))?\}", path.read_text()):
            found[name] = default
    return found


def env_example():
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line))


def readme_table():
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| (`[^`]*`|\(empty\)) \|", README, re.M)
    return {name: "" if default == "(empty)" else default.strip("`") for name, default in rows}


def test_env_example_lists_every_variable_compose_reads_with_its_default():
    assert env_example() == compose_variables()


def test_readme_table_matches_env_example():
    assert readme_table() == env_example()


def test_readme_secrets_snippet_works_under_umask_077(tmp_path):
    block = re.search(r"```sh\n(mkdir -p secrets.*?)```", README, re.S).group(1)
    script = "\n".join(line for line in block.splitlines() if not line.startswith("docker "))
    subprocess.run(["bash", "-c", f"umask 077\nset -e\n{script}"], cwd=tmp_path, check=True)
    folder = tmp_path / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("django_secret_key", "db_password"):
        path = folder / name
        # Readable by the containers' own users (postgres 999, app 10001), not writable by them.
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)
        assert len(path.read_text()) >= 40
