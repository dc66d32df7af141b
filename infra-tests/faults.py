"""The faults a scenario can cause, in one place. Each builder returns a fault:
a callable `fault(stack) -> Outcome` that breaks something while traffic flows,
waits until the stack has repaired itself (the same number of healthy containers
per affected service as before), and says what happened in one typed Outcome.

Victims are chosen by a function of the stack (`first("wsgi")`, `one_of_each(...)`,
or any `lambda stack: [...]`), so a new scenario combines a fault and a choice
instead of copying a kill loop. See README.md, "Write a fault scenario"."""

import os
import signal
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Returning:
    """An app container that went away and must take traffic again: its hostname
    (what X-Served-By carries) and when it stopped serving (time.time())."""

    host: str
    down_at: float


@dataclass
class Outcome:
    """What a fault did. `fault_end`: when it stopped acting (a pause's unpause, a
    deploy's end); `returning`: the app containers whose fail-back is checked;
    `victims`: container names; `details`: fault-specific facts for the report."""

    fault_end: float
    returning: list[Returning] = field(default_factory=list)
    victims: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)


# --- choosing victims --------------------------------------------------------------------------

def first(service):
    return lambda stack: stack.containers(service)[:1]


def one_of_each(*services):
    return lambda stack: [stack.containers(service)[0] for service in services]


def every(*services):
    return lambda stack: [c for service in services for c in stack.containers(service)]


# --- primitives (also used by tests that are not scenarios) -------------------------------------

def crash(container):
    """SIGKILL to the container's main process from the host: a crash, which the
    restart policy repairs (`docker kill` would count as a manual stop, and Docker
    would not restart it)."""
    container.reload()
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)


def wait_restarted(stack, container, count_before, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.attrs["State"]["Running"] and container.attrs["RestartCount"] > count_before:
            return
        time.sleep(0.2)
    raise AssertionError(f"{container.name} was not restarted by its restart policy within {timeout} s")


def _healthy_counts(stack, victims):
    services = {stack.service_of(v) for v in victims}
    return {service: len(stack.containers(service)) for service in services}


def _wait_as_before(stack, counts, timeout=120):
    for service, count in counts.items():
        stack.wait_healthy(service, count, timeout=timeout)


def _returning(stack, victims, down_at, serves_traffic):
    return [Returning(stack.hostname(v), down_at) for v in victims] if serves_traffic else []


# --- faults ------------------------------------------------------------------------------------

def sigkill(choose, serves_traffic=True):
    """A crash of every chosen container at once; their restart policies bring them
    back. `serves_traffic=False` for a dependency (db, redis, nginx): no fail-back
    to check, only the answers while it is away."""

    def fault(stack):
        victims = choose(stack)
        counts, restarts = _healthy_counts(stack, victims), {v.name: stack.restart_count(v) for v in victims}
        down_at = time.time()
        for victim in victims:
            crash(victim)
        fault_end = time.time()
        for victim in victims:
            wait_restarted(stack, victim, restarts[victim.name])
        _wait_as_before(stack, counts)
        return Outcome(fault_end, _returning(stack, victims, down_at, serves_traffic), [v.name for v in victims],
                       {"restart_counts": {v.name: stack.restart_count(v) for v in victims}})

    return fault


def crash_dependency(service):
    """SIGKILL of a one-container dependency's main process (db, redis, nginx)."""
    return sigkill(first(service), serves_traffic=False)


def pause(choose, seconds=10.0):
    """A hang: the chosen containers frozen (`docker pause`), then thawed. They still
    accept connections in the kernel but answer nothing, like a deadlocked server."""

    def fault(stack):
        victims = choose(stack)
        counts = _healthy_counts(stack, victims)
        down_at = time.time()
        for victim in victims:
            victim.pause()
        try:
            time.sleep(seconds)
        finally:
            for victim in victims:
                victim.unpause()
        fault_end = time.time()
        _wait_as_before(stack, counts)
        return Outcome(fault_end, _returning(stack, victims, down_at, True), [v.name for v in victims],
                       {"paused_s": seconds})

    return fault


def stop_start(choose, grace=25):
    """`docker stop` (the image's STOPSIGNAL, a graceful stop) of the chosen containers
    at once, then `docker start`. Their exit codes go into the details."""

    def fault(stack):
        victims = choose(stack)
        counts = _healthy_counts(stack, victims)
        down_at = time.time()
        threads = [threading.Thread(target=v.stop, kwargs={"timeout": grace}) for v in victims]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=grace + 15)
        fault_end = time.time()
        exit_codes = {}
        for victim in victims:
            victim.reload()
            exit_codes[victim.name] = victim.attrs["State"]["ExitCode"] if victim.status == "exited" else None
            victim.start()
        _wait_as_before(stack, counts)
        return Outcome(fault_end, _returning(stack, victims, down_at, True), [v.name for v in victims],
                       {"exit_codes": exit_codes})

    return fault


def replace(choose, grace=25):
    """Each chosen container stopped and removed; Compose starts a new one in its place
    (a new name, a new IP), which nginx must find through Docker's DNS."""

    def fault(stack):
        victims = choose(stack)
        returning, old_ips = [], []
        for victim in victims:
            service = stack.service_of(victim)
            before = set(stack.app_hostnames(service))
            old_ips += [n["IPAddress"] for n in victim.attrs["NetworkSettings"]["Networks"].values()]
            down_at = time.time()
            victim.stop(timeout=grace)
            victim.remove()
            stack.compose("up", "--detach", "--no-recreate", "--wait", service)
            returning += [Returning(host, down_at) for host in set(stack.app_hostnames(service)) - before]
        return Outcome(time.time(), returning, [v.name for v in victims], {"old_ips": old_ips})

    return fault


def rolling_restart(choose, grace=25):
    """The chosen containers restarted (graceful stop, start) one at a time, each back
    to healthy before the next."""

    def fault(stack):
        victims = choose(stack)
        counts = _healthy_counts(stack, victims)
        returning = []
        for victim in victims:
            down_at = time.time()
            victim.restart(timeout=grace)
            _wait_as_before(stack, counts)
            returning.append(Returning(stack.hostname(victim), down_at))
        return Outcome(time.time(), returning, [v.name for v in victims])

    return fault


def command(run, **facts):
    """Not a crash but an operation under traffic: `run()` (a deploy, a rollback, a
    renewal to wait for) returns a dict of facts for the report."""

    def fault(stack):
        started = time.time()
        details = dict(run(), **facts)
        details.setdefault("took_s", round(time.time() - started, 1))
        return Outcome(time.time(), details=details)

    return fault
