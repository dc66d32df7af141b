"""Every base image the project names is a tag checked against Docker Hub's official
library (scripts/base-images/README.md), so an ordinary Docker host can pull it."""

import json
import re

from stack import ROOT, compose

README = ROOT / "scripts" / "base-images" / "README.md"


def verified_tags():
    return set(re.findall(r"^\| `([a-z0-9.-]+:[^`]+)` \|", README.read_text(), re.M))


def named_images():
    """FROM lines of every Dockerfile (not earlier stages), and every image in the
    resolved Compose model with all profiles on and every top-level compose file."""
    names = set()
    for dockerfile in [*ROOT.rglob("Dockerfile"), *ROOT.rglob("*.Dockerfile")]:
        if "base-images" in dockerfile.parts or ".venv" in dockerfile.parts:
            continue
        stages = set()
        for line in dockerfile.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0].upper() == "FROM":
                if words[1] not in stages:
                    names.add((words[1], str(dockerfile.relative_to(ROOT))))
                if len(words) >= 4 and words[2].upper() == "AS":
                    stages.add(words[3])
    # compose.yaml, then every other top-level compose*.yaml on top (compose.bench.yaml).
    files = ("compose.yaml", *sorted(p.name for p in ROOT.glob("compose*.yaml") if p.name != "compose.yaml"))
    config = json.loads(compose("--profile", "*", "config", "--format", "json", capture=True, files=files).stdout)
    for name, service in config["services"].items():
        names.add((service["image"], f"compose service {name}"))
    return {(image, where) for image, where in names if not image.startswith("djangostack/")}


def test_every_base_image_is_a_checked_official_tag():
    verified = verified_tags()
    assert len(verified) >= 4, f"could not read the table in {README}"
    unknown = sorted(f"{image} ({where})" for image, where in named_images() if image not in verified)
    assert not unknown, f"not checked against the official library (add to {README.name}): {unknown}"

