"""Where the machine's CPU goes during a load: each service of the test project (from its
container's cgroup), the load generator, Docker's own daemons, and the machine in all.

The overload scenario runs the stack, its load generator and Docker on one machine, so what
the generator and the edge spend on the excess is CPU the app no longer has. These numbers
say how much, so that a goodput below capacity can be told apart from work the stack wastes.

Hand-written: psutil would give the host processes, but not a container's cgroup; these are
two small files per sample."""

import os
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Host processes by their command name (/proc/PID/comm, at most 15 characters).
# docker-proxy apart: it carries every connection to a port published on 127.0.0.1 (the
# tests' only address), where a client from another machine would pass through iptables.
HOST_GROUPS = {"wrk": "load generator", "dockerd": "docker daemons", "containerd": "docker daemons",
               "containerd-shim": "docker daemons", "docker-proxy": "docker-proxy"}
CGROUP_FILES = (  # cgroup v1 (cgroupfs driver, this machine), then v2 with either driver
    ("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage", 1e-9),
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat", 1e-6),
    ("/sys/fs/cgroup/docker/{id}/cpu.stat", 1e-6),
)


def _container_cpu_s(container_id):
    for pattern, unit in CGROUP_FILES:
        path = Path(pattern.format(id=container_id))
        if path.exists():
            text = path.read_text()
            if "usage_usec" in text:
                text = next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))
            return int(text.strip()) * unit
    return None


def _process_cpu_s(pid):
    # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine_busy_s():
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / CLK_TCK  # user nice system idle iowait irq softirq steal


def snapshot(stack):
    """CPU seconds used so far, per group. Processes are keyed by pid, so one that starts or
    ends between two snapshots is left out of their difference rather than counted wrongly."""
    services = {}
    for c in stack.containers():
        used = _container_cpu_s(c.id)
        if used is not None:
            services[(stack.service_of(c), c.id)] = used
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            group = HOST_GROUPS.get((entry / "comm").read_text().strip())
            if group:
                processes[(group, entry.name)] = _process_cpu_s(entry.name)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return {"at": time.monotonic(), "machine": _machine_busy_s(), "services": services, "processes": processes}


def usage(first, last):
    """Cores used on average between two snapshots, per group: each service of the stack,
    the host's groups, everything else, and the machine. Only what both snapshots saw."""
    seconds = last["at"] - first["at"]
    cores = {}
    for kind in ("services", "processes"):
        for key, used in last[kind].items():
            if key in first[kind]:
                cores[key[0]] = cores.get(key[0], 0.0) + (used - first[kind][key]) / seconds
    machine = (last["machine"] - first["machine"]) / seconds
    result = {name: round(value, 3) for name, value in sorted(cores.items(), key=lambda kv: -kv[1])}
    result["other"] = round(machine - sum(cores.values()), 3)  # pytest, the kernel's own threads, ...
    result["machine"] = round(machine, 3)
    result["seconds"] = round(seconds, 1)
    return result
