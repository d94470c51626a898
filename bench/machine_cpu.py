"""Where the machine's CPU goes during a benchmark: per command name (postgres, java for
the broker...) and for the whole machine, from /proc (Linux)."""

from __future__ import annotations

import os


def cpu_by_command() -> dict[str, float]:
    """CPU seconds used so far by every live process, summed by command name (postgres,
    java for the broker...), plus ``machine``: the busy time of all CPUs (/proc/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        command = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        used[command] = used.get(command, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            int(x) for x in stat.readline().split()[1:9]
        )
    used["machine"] = (user + nice + system + irq + softirq + steal) / tick
    return used


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent between two :func:`cpu_by_command` readings: the machine, PostgreSQL
    (its backends live through the measurement) and the Kafka broker (java)."""
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in ("machine", "postgres", "java")}
