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

    @property
    def baseline(self) -> bool:
        return self.name in BASELINES

    @property
    def label(self) -> str:
        return f"{self.name} {self.transport or ''} x{self.figures.count}".replace("  ", " ")


def _find(rows: list[Row], name: str, transport: str | None, count: int) -> Row | None:
    for row in rows:
        if (row.name, row.transport, row.figures.count) == (name, transport, count):
            return row
    return None


def addRatios(rows: list[Row]) -> None:
    """
    Each upload row's throughput as a ratio to: the discard receiver over
    the same transport and the disk, at the same concurrency; for C{sftp},
    OpenSSH's C{sftp put}; for C{sqlite}, the filesystem backend; for
    several at once, the same run with one.
    """
    for row in rows:
        count, transport = row.figures.count, row.transport
        against = {}
        if not row.baseline:
            against["discard"] = _find(rows, DISCARD, transport, count)
            against["disk"] = _find(rows, DISK, None, count)
        if row.name == SFTP:
            against["sftp put"] = _find(rows, SFTP_PUT, "ssh", count)
        if row.name == SQLITE:
            against["filesystem"] = _find(rows, FILESYSTEM, transport, count)
        if count > 1:
            against["single"] = _find(rows, row.name, transport, 1)
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

    def judge(what, name, transport, count, judged):
        row = _find(rows, name, transport, count)
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
    for backend in (FILESYSTEM, SQLITE, SFTP):
        judge(f"{many} at once ≥ {MANY_OF_SINGLE} × single ({backend})",
              backend, "https", many, ratio("single", MANY_OF_SINGLE))
    for backend in (FILESYSTEM, SQLITE, SFTP):
        peaks = [row for row in rows if row.name == backend and row.figures.count == many]
        if peaks:
            worst = max(peaks, key=lambda row: row.figures.peakRSS)
            found.append(Target(
                f"peak server RSS ≤ 64 MB ({PEAK_RSS_BYTES / MiB:.1f} MiB) "
                f"during {many} uploads at once ({backend}, HTTP or HTTPS)",
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
    rest = figures.machineCPU - (figures.serverCPU or 0) - figures.clientCPU
    ratios = "; ".join(f"{value:.2f} × {name}" for name, value in row.ratios.items())
    return (
        f"| {row.name} | {row.transport or '–'} | {figures.count} "
        f"| {figures.throughput / MB:.1f} | {ratios or '–'} | {serverCPU} "
        f"| {_perGB(figures, figures.clientCPU)} | {memory} | {100 * rest / figures.wall:.0f}% |"
    )


def markdown(rows: list[Row], found: list[Target], machine: dict, run: dict) -> str:
    lines = [
        "# Server benchmark: the latest figures",
        "",
        f"`{run['command']}` on {machine['date']}: {humanSize(run['size'])} per object, "
        f"1 and {run['many']} uploads at once; {run['minutes']:.1f} minutes.  "
        "Written by bench/run.py; what the columns mean: bench/README.md.",
        "",
        "## Machine",
        "",
        *(f"- {name}: {value if not isinstance(value, list) else ', '.join(value) or 'none'}"
          for name, value in machine.items()),
        "",
        "## Figures",
        "",
        "| run | transport | at once | MB/s | ratios | server CPU s/GB (reactor) "
        "| client CPU s/GB | server RSS MiB before → peak | rest of machine, % of a core |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_tableRow(row) for row in rows),
        "",
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
             "figures": row.figures.asDict(), "ratios": row.ratios}
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
