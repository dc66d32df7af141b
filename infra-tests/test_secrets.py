"""Secrets are Compose secrets read from files: never in an environment variable or an image layer."""

from stack import ROOT


def secret_values():
    return {name: (ROOT / "secrets" / name).read_text().strip() for name in ("django_secret_key", "db_password")}


def test_secrets_are_mounted_files(stack):
    for service in ("wsgi", "asgi"):
        for container in stack.containers(service):
            result = container.exec_run(["ls", "/run/secrets"])
            assert set(result.output.decode().split()) >= {"django_secret_key", "db_password"}


def test_no_secret_in_any_environment_or_image(stack):
    values = secret_values()
    for container in stack.containers(all=True):
        env = "\n".join(container.attrs["Config"]["Env"] or [])
        for name, value in values.items():
            assert value not in env, f"{name} is in {container.name}'s environment"
        history = container.image.history()
        layers = "\n".join(str(step.get("CreatedBy", "")) for step in history)
        for name, value in values.items():
            assert value not in layers, f"{name} is in the image of {container.name}"
    for image in ("djangostack/app:latest", "djangostack/nginx:latest"):
        cmd = ["sh", "-c", "ls /run/secrets 2>/dev/null; ls /etc/nginx/certs 2>/dev/null | grep pem; true"]
        out = stack.docker.containers.run(image, cmd, entrypoint=[], remove=True, user="65534").decode()
        assert out.strip() == "", f"{image} carries secret or key files: {out}"
