"""Django's own deployment checklist passes, with zero warnings, under the
settings the containers really run with."""


def test_manage_py_check_deploy_has_no_warnings(stack):
    for service in ("wsgi", "asgi"):
        container = stack.containers(service)[0]
        result = container.exec_run(["python", "manage.py", "check", "--deploy", "--fail-level", "WARNING"])
        output = result.output.decode()
        assert result.exit_code == 0, f"{service}: {output}"
        assert "System check identified no issues" in output, output
