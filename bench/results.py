"""
What a run of bench/run.py means: each row's ratios to the baselines and
to the other rows it is judged against, the targets of issue #7 met or not,
and the report written as Markdown and JSON.
"""

import json
import os
from dataclasses import dataclass, field

from upload import MB, MiB, Figures, humanSize

DISCARD, DISK, SFTP_PUT = "discard", "disk", "sftp put"
BASELINES = (DISK, SFTP_PUT, DISCARD)
FILESYSTEM, SQLITE, SFTP = "filesystem", "sqlite", "sftp"
BACKENDS = (FILESYSTEM, SQLITE, SFTP)
# Issue #7's targets.
SINGLE_HTTPS_MB_S = 125
SINGLE_HTTPS_OF_DISCARD = 0.8
MANY_OF_SINGLE = 2
PEAK_RSS_BYTES = 64 * MB
SFTP_OF_SFTP_PUT = 0.8
SQLITE_OF_FILESYSTEM = 0.5


@dataclass
class Row:
    """
    One timed run: C{name} is a backend or a baseline; C{transport} is
    C{http} or C{https} for uploads, C{ssh} for C{sftp put}, L{None} for
    the disk.
    """

    name: str
    transport: str | None
    figures: Figures
    ratios: dict[str, float] = field(default_factory=dict)
    # bwscd's --workers: how many processes share its port.
    workers: int = 1

    @property
    def baseline(self) -> bool:
        return self.name in BASELINES

    @property
    def label(self) -> str:
        label = f"{self.name} {self.transport or ''} x{self.figures.count}".replace("  ", " ")
        return label + (f" --workers {self.workers}" if self.workers > 1 else "")


def _find(rows: list[Row], name: str, transport: str | None, count: int,
          workers: int = 1) -> Row | None:
    for row in rows:
        if (row.name, row.transport, row.figures.count, row.workers) == (
                name, transport, count, workers):
            return row
    return None


def addRatios(rows: list[Row]) -> None:
    """
    Each upload row's throughput as a ratio to: the discard receiver over
    the same transport and the disk, at the same concurrency; for C{sftp},
    OpenSSH's C{sftp put}; for C{sqlite}, the filesystem backend (with as
    many processes); for several at once, the same run with one (in one
    process); with C{--workers}, the same run in one process.
    """
    for row in rows:
        count, transport, workers = row.figures.count, row.transport, row.workers
        against = {}
        if not row.baseline:
            against["discard"] = _find(rows, DISCARD, transport, count)
            against["disk"] = _find(rows, DISK, None, count)
        if row.name == SFTP:
            against["sftp put"] = _find(rows, SFTP_PUT, "ssh", count)
        if row.name == SQLITE:
            against["filesystem"] = _find(rows, FILESYSTEM, transport, count, workers)
        if count > 1:
            against["single"] = _find(rows, row.name, transport, 1)
        if workers > 1:
            against["--workers 1"] = _find(rows, row.name, transport, count)
        row.ratios = {
            name: row.figures.throughput / other.figures.throughput
            for name, other in against.items()
            if other is not None
        }


@dataclass
class Target:
    what: str
    figure: str
    met: bool


def targets(rows: list[Row], many: int) -> list[Target]:
    """Issue #7's targets, judged on this run's rows (those that ran)."""
    found = []

    def judge(what, name, transport, count, judged, workers=1):
        row = _find(rows, name, transport, count, workers)
        if row is not None:
            figure, met = judged(row)
            found.append(Target(what, f"{row.label}: {figure}", met))

    def throughput(row):
        value = row.figures.throughput / MB
        return f"{value:.1f} MB/s", value >= SINGLE_HTTPS_MB_S

    def ratio(name, minimum):
        return lambda row: (f"{row.ratios[name]:.2f} × {name}", row.ratios[name] >= minimum)

    judge(f"single upload over HTTPS ≥ {SINGLE_HTTPS_MB_S} MB/s",
          FILESYSTEM, "https", 1, throughput)
    judge(f"single upload over HTTPS ≥ {SINGLE_HTTPS_OF_DISCARD} × discard (ideally)",
          FILESYSTEM, "https", 1, ratio("discard", SINGLE_HTTPS_OF_DISCARD))
    # Each backend in one process, then with every --workers that ran.
    configurations = [(backend, 1) for backend in BACKENDS] + sorted(
        {(row.name, row.workers) for row in rows if row.workers > 1},
        key=lambda configuration: (configuration[1], BACKENDS.index(configuration[0])))

    def named(backend, workers):
        return backend + (f", --workers {workers}" if workers > 1 else "")

    for backend, workers in configurations:
        judge(f"{many} at once ≥ {MANY_OF_SINGLE} × single ({named(backend, workers)})",
              backend, "https", many, ratio("single", MANY_OF_SINGLE), workers)
    for backend, workers in configurations:
        peaks = [row for row in rows if (row.name, row.figures.count, row.workers) == (
            backend, many, workers)]
        if peaks:
            worst = max(peaks, key=lambda row: row.figures.peakRSS)
            found.append(Target(
                f"peak server RSS ≤ 64 MB ({PEAK_RSS_BYTES / MiB:.1f} MiB) "
                f"during {many} uploads at once ({named(backend, workers)}, HTTP or HTTPS"
                + ("; all processes together" if workers > 1 else "") + ")",
                f"{worst.label}: {worst.figures.peakRSS / MiB:.1f} MiB",
                worst.figures.peakRSS <= PEAK_RSS_BYTES,
            ))
    judge(f"SFTP backend ≥ {SFTP_OF_SFTP_PUT} × OpenSSH sftp put",
          SFTP, "https", 1, ratio("sftp put", SFTP_OF_SFTP_PUT))
    for count in (1, many):
        judge(f"SQLite backend ≥ {SQLITE_OF_FILESYSTEM} × filesystem",
              SQLITE, "https", count, ratio("filesystem", SQLITE_OF_FILESYSTEM))
    return found


def _perGB(figures: Figures, seconds: float | None) -> str:
    return "–" if seconds is None else f"{figures.perGB(seconds):.2f}"


def _tableRow(row: Row) -> str:
    figures = row.figures
    serverCPU = _perGB(figures, figures.serverCPU)
    if figures.reactorCPU is not None and not row.baseline:
        serverCPU += f" ({_perGB(figures, figures.reactorCPU)})"
    memory = "–" if figures.peakRSS is None else (
        f"{figures.rssBefore / MiB:.1f} → {figures.peakRSS / MiB:.1f}")
    if (figures.processes or 0) + (figures.helpers or 0) > 1:
        memory += f" (largest {figures.largestRSS / MiB:.1f})"
    rest = figures.machineCPU - (figures.serverCPU or 0) - figures.clientCPU
    ratios = "; ".join(f"{value:.2f} × {name}" for name, value in row.ratios.items())
    processes = "–" if row.baseline else str(row.workers)
    return (
        f"| {row.name} | {row.transport or '–'} | {figures.count} | {processes} "
        f"| {figures.throughput / MB:.1f} | {ratios or '–'} | {serverCPU} "
        f"| {_perGB(figures, figures.clientCPU)} | {memory} | {100 * rest / figures.wall:.0f}% |"
    )


def _processes(rows: list[Row]) -> list[str]:
    """
    The runs whose server was more than one process: how they spread over
    bwscd's processes (--workers), and what the others (ssh) cost.
    """
    several = [row for row in rows if not row.baseline and (
        row.figures.processes or 0) + (row.figures.helpers or 0) > 1]
    if not several:
        return []
    lines = [
        "## The server's processes",
        "",
        "| run | bwscd processes seen | CPU s each (main first) | uploads each served "
        "| other processes (ssh): CPU s/GB | largest process's peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in several:
        figures = row.figures
        cpu = " + ".join(f"{seconds:.2f}" for seconds in figures.processCPU)
        served = " + ".join(str(number) for number in figures.served or []) or "–"
        helpers = (f"{figures.helpers}: {figures.perGB(figures.helperCPU):.2f}"
                   if figures.helpers else "–")
        lines.append(f"| {row.label} | {figures.processes} | {cpu} | {served} | {helpers} "
                     f"| {figures.largestRSS / MiB:.1f} |")
    return [*lines, ""]


def markdown(rows: list[Row], found: list[Target], machine: dict, run: dict) -> str:
    lines = [
        "# Server benchmark: the latest figures",
        "",
        f"`{run['command']}` on {machine['date']}: {humanSize(run['size'])} per object, "
        f"1 and {run['many']} uploads at once"
        + (f", {run['many']} also with `--workers {run['workers']}`"
           if run.get("workers", 1) > 1 else "")
        + f"; {run['minutes']:.1f} minutes.  "
        "Written by bench/run.py; what the columns mean: bench/README.md.",
        "",
        "## Machine",
        "",
        *(f"- {name}: {value if not isinstance(value, list) else ', '.join(value) or 'none'}"
          for name, value in machine.items()),
        "",
        "## Figures",
        "",
        "| run | transport | at once | --workers | MB/s | ratios | server CPU s/GB (reactor "
        "threads) | client CPU s/GB | server RSS MiB before → peak | rest of machine, % of "
        "a core |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_tableRow(row) for row in rows),
        "",
        *_processes(rows),
        "## Targets (issue #7)",
        "",
        "| target | figure | met |",
        "| --- | --- | --- |",
        *(f"| {target.what} | {target.figure} | {'yes' if target.met else '**no**'} |"
          for target in found),
        "",
    ]
    return "\n".join(lines)


def write(directory: str, rows: list[Row], found: list[Target], machine: dict,
          run: dict) -> list[str]:
    """C{latest.md} and C{latest.json} in C{directory}; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    document = {
        **run,
        "machine": machine,
        "rows": [
            {"name": row.name, "transport": row.transport, "baseline": row.baseline,
             "workers": row.workers, "figures": row.figures.asDict(), "ratios": row.ratios}
            for row in rows
        ],
        "targets": [target.__dict__ for target in found],
    }
    paths = [os.path.join(directory, "latest.md"), os.path.join(directory, "latest.json")]
    with open(paths[0], "w") as f:
        f.write(markdown(rows, found, machine, run))
    with open(paths[1], "w") as f:
        json.dump(document, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return paths
