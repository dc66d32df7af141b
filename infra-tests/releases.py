"""Releases made as a user makes them: a copy of this repository with its own git history
(test_deploy.py on one host, test_swarm.py on the swarm), where a change is committed and
then deployed with the copy's own scripts."""

import os
import subprocess

from stack import ROOT


class Release:
    """A copy of the repository with its own git history, where releases are made."""

    def __init__(self, path, env=None):
        self.path = path
        self.env = env or {}

    def git(self, *args):
        return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.test", *args],
                              cwd=self.path, check=True, capture_output=True, text=True).stdout

    def edit(self, relative, old, new):
        target = self.path / relative
        text = target.read_text()
        assert old in text, f"{relative}: {old!r} not found"
        target.write_text(text.replace(old, new, 1))

    def run(self, script, *args, timeout=900):
        return subprocess.run([str(self.path / "scripts" / script), *args], cwd=self.path, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, **self.env})

    def app_version(self):
        """The release scripts/deploy makes of the copy's last commit (lib.sh app_version, clean tree)."""
        return self.git("log", "-1", "--format=%h", "--abbrev=12", "--", "app").strip()


def copy_of_repository(path, env=None):
    """The files git would commit (tracked, and untracked but not ignored: no .git, no venv, no
    secrets) copied to `path`, committed there as "v1"."""
    path.mkdir()
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True).stdout
    archive = path.parent / "tree.tar"
    with open(archive, "wb") as out:
        subprocess.run(["tar", "--null", "-T", "-", "-c"], cwd=ROOT, input=files, check=True, stdout=out)
    subprocess.run(["tar", "-x", "-f", str(archive)], cwd=path, check=True)
    assert not (path / ".git").exists() and (path / "scripts" / "deploy").exists()
    release = Release(path, env)
    release.git("init", "-q")
    release.git("add", "-A")
    release.git("commit", "-qm", "v1")
    return release
