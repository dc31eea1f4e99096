"""Benchmark of memory: the demo's peak resident memory (VmHWM) at a scale factor.

Run from the repository root::

    .venv/bin/python bench/memory.py [--scale-factor 1] [--rounds 1]
                                     [--baseline-src OTHER_CHECKOUT/src]
                                     [--markdown docs/benchmarks.md]

What a user does: ``python -m lakehouse.demo --home <new folder> --scale-factor SF``, in a
child process. Its peak resident set (``ru_maxrss`` of that child from ``wait4``, the
kernel's VmHWM at exit) is the number. While it runs, a thread in the child samples its
VmRSS every 0.2 s and notes the pipeline step in progress (the runner's ``start`` events:
``ingest tpch``, ``model silver.lineitem``, ``check …``), so the report says where the
peak is: the highest VmRSS seen per step of the demo's first load and of the whole demo.

With ``--baseline-src`` the same demo also runs from another checkout's ``src`` folder
(e.g. a worktree of the commit before a change), interleaved with ours round by round:
medians of both and their paired ratio. The TPC-H data comes from the cache
(``python -m lakehouse.tpch -s SF``) and is made before the first round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _common import REPO, Report, Table, median, paired_ratio, ratio_iqr, replace_section, say

SECTION = "## Demo peak memory (bench/memory.py)"
#: Target of issue 10: the demo at SF 1 peaks at no more than 2 GB.
TARGET_BYTES = 2 * 1024**3


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def child(home: Path, scale_factor: float, out: Path) -> int:
    """Run the demo in this process, sampling VmRSS per runner step; write ``out`` (JSON)."""
    from rich.console import Console

    from lakehouse import demo
    from lakehouse.pipelines import runner

    phase = ["setup"]
    peaks: dict[str, int] = {}
    demo_step = ["init"]
    emit = runner._Run.emit

    def noting(self: runner._Run, event: runner.RunEvent) -> None:
        if event.phase == "start":
            phase[0] = f"{demo_step[0]}: {event.step} {event.name}"
        emit(self, event)

    runner._Run.emit = noting  # type: ignore[method-assign]
    step = demo.Demo.step

    def stepping(self: demo.Demo, title: str, key: str):  # type: ignore[no-untyped-def]
        demo_step[0] = key
        phase[0] = key
        return step(self, title, key)

    demo.Demo.step = stepping  # type: ignore[assignment,method-assign]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            rss = _rss_bytes()
            key = phase[0]
            peaks[key] = max(peaks.get(key, 0), rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    result = demo.run(home, Console(quiet=True), scale_factor=scale_factor)
    done.set()
    sampler.join()
    out.write_text(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "timings": result.timings,
                "peaks": peaks,
            }
        )
    )
    return 0


@dataclass
class Sample:
    """One demo process."""

    peak: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)


def run_demo(src: Path, scale_factor: float, work: Path) -> Sample:
    """The demo in a child process importing ``lakehouse`` from ``src``."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    out = home.with_suffix(".json")
    env = {**os.environ, "PYTHONPATH": str(src), "LAKEHOUSE_HOME": str(home)}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(home / "lh"),
        "--scale-factor",
        str(scale_factor),
        "--out",
        str(out),
    ]
    process = subprocess.Popen(command, env=env, cwd=REPO)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"the demo failed (exit {process.returncode}) with src {src}")
    data = json.loads(out.read_text())
    return Sample(usage.ru_maxrss * 1024, data["seconds"], data["timings"], data["peaks"])


def gb(value: float) -> str:
    """``1.23 GB`` (GiB)."""
    return f"{value / 1024**3:.2f} GB"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src folder")
    parser.add_argument("--markdown", type=Path, help="write the section into this file")
    parser.add_argument(
        "--baseline-only", action="store_true", help="run only the baseline (to profile it)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return child(args.child, args.scale_factor, args.out)

    from lakehouse import tpch

    say(f"TPC-H sf{tpch.format_scale_factor(args.scale_factor)} (cached after the first time)")
    tpch.generate(args.scale_factor)
    ours_src = REPO / "src"
    sides: list[tuple[str, Path]] = [("ours", ours_src)]
    if args.baseline_src is not None:
        sides.insert(0, ("baseline", args.baseline_src.resolve()))
        if args.baseline_only:
            sides = sides[:1]
    samples: dict[str, list[Sample]] = {name: [] for name, _ in sides}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-memory-") as tmp:
        for n in range(args.rounds):
            for name, src in sides:
                say(f"round {n + 1}/{args.rounds}: demo ({name})")
                sample = run_demo(src, args.scale_factor, Path(tmp))
                say(f"  peak {gb(sample.peak)} in {sample.seconds:.0f} s")
                samples[name].append(sample)
    load = tuple(max(a, b) for a, b in zip(load, os.getloadavg(), strict=True))

    report = Report()
    sf = tpch.format_scale_factor(args.scale_factor)
    summary = Table(
        f"Demo at SF {sf}: peak resident memory (VmHWM), {args.rounds} round(s)",
        ["side", "peak (median)", "demo time (median)", "first load", "change batch"],
    )
    for name, _ in sides:
        got = samples[name]
        summary.rows.append(
            [
                name,
                gb(median([s.peak for s in got])),
                f"{median([s.seconds for s in got]):.0f} s",
                f"{median([s.timings.get('first load', 0.0) for s in got]):.1f} s",
                f"{median([s.timings.get('changes', 0.0) for s in got]):.1f} s",
            ]
        )
    if "baseline" in samples and "ours" in samples:
        r = paired_ratio([s.peak for s in samples["baseline"]], [s.peak for s in samples["ours"]])
        summary.notes.append(f"ours / baseline peak: {ratio_iqr(r)}")
    summary.notes.append(
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min, highest "
        f"seen), {os.cpu_count()} cores, {platform.python_version()}"
    )
    report.add(summary)

    for name, _ in sides:
        phases: dict[str, list[int]] = {}
        for s in samples[name]:
            for key, value in s.peaks.items():
                phases.setdefault(key, []).append(value)
        top = sorted(phases.items(), key=lambda kv: -median(kv[1]))[:10]
        table = Table(
            f"Where the peak is ({name}): highest VmRSS sampled per step (top 10)",
            ["step", "VmRSS (median)"],
        )
        for key, values in top:
            table.rows.append([key, gb(median(values))])
        report.add(table)

    ours = median([s.peak for s in samples[sides[-1][0]]])
    report.check(
        f"demo SF {sf} peak memory ({sides[-1][0]})", gb(ours), "<= 2 GB", ours <= TARGET_BYTES
    )
    print("\n" + report.summary().text(), flush=True)
    if args.markdown is not None:
        header = [
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with "
            f"`python bench/memory.py --scale-factor {args.scale_factor:g} "
            f"--rounds {args.rounds}"
            + (" --baseline-src <checkout of the baseline>/src" if args.baseline_src else "")
            + "`."
        ]
        replace_section(args.markdown, SECTION, report.markdown(SECTION, header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
