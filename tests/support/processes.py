"""Processes as C{/proc} shows them: their state, sizes, command lines and descendants."""

import os


def statFields(pid: int, tid: int | None = None) -> list[str]:
    """
    The fields of C{/proc/PID/stat} (or of its thread C{tid}) after the
    command name: [0] is field 3 of proc(5), the state.
    """
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as f:
        # The command name, in parentheses, may hold spaces: split after it.
        return f.read().rpartition(")")[2].split()


def isRunning(pid: int) -> bool:
    """Neither gone nor a zombie (a killed grandchild waits for init to reap it)."""
    try:
        return statFields(pid)[0] != "Z"
    except OSError:
        return False


def descendantsOf(pid: int) -> list[int]:
    """
    The running (not zombie) processes descended from C{pid}, by their
    parent pid: its children, theirs, and so on.
    """
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = statFields(int(entry))
            except OSError:
                continue  # it has just ended
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return sorted(found)


def commandOf(pid: int) -> list[str]:
    """Its command line; empty if it has ended."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def processStatus(pid: int) -> dict[str, int]:
    """The sizes in C{/proc/PID/status} (VmRSS, VmHWM, ...), in bytes."""
    sizes = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                sizes[name] = int(value.split()[0]) * 1024
    return sizes
