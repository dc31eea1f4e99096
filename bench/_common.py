"""What every benchmark script shares: statistics, result tables, targets, docs sections.

Benchmarks run as scripts (``.venv/bin/python bench/NAME.py``), so this module is imported
as ``_common`` from the script's own folder. Conventions:

* numbers are medians (and paired ratios of samples taken side by side), never single
  times: the machines are shared and noisy;
* a :class:`Report` collects :class:`Table` s and :class:`Check` s (a number with a
  target), prints each table as it is produced and renders the whole as a Markdown
  section of ``docs/benchmarks.md`` (:func:`replace_section` keeps the other sections).
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# -- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, linearly interpolated (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (NaN when empty)."""
    return percentile(values, 0.5)


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Median, p25 and p75 of ``b[i] / a[i]`` over samples taken side by side.

    More robust than a ratio of medians on a loaded machine, where latencies are often
    bimodal (scheduled at once or after another process's time slice).
    """
    ratios = [y / x for x, y in zip(a, b, strict=True) if x > 0]
    return median(ratios), percentile(ratios, 0.25), percentile(ratios, 0.75)


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` took."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def same_rows(a: list[dict[str, object]], b: list[dict[str, object]]) -> bool:
    """Equal rows; floats (sums of doubles, summed in any order) to 1e-9 relative."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.keys() != y.keys():
            return False
        for key, value in x.items():
            other = y[key]
            if isinstance(value, float) and isinstance(other, float):
                if not math.isclose(value, other, rel_tol=1e-9):
                    return False
            elif value != other:
                return False
    return True


# -- formatting ---------------------------------------------------------------------------


def seconds(value: float) -> str:
    """``850 ms`` or ``2.31 s`` (``-`` for NaN)."""
    if value != value:  # NaN
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def rate(count: int, value: float, unit: str = "rows") -> str:
    """``count`` per ``value`` seconds: ``12,345 rows/s``."""
    return f"{count / value:,.0f} {unit}/s" if value > 0 else "-"


def ratio(x: float) -> str:
    """``1.02x``."""
    return f"{x:.2f}x"


def ratio_iqr(r: tuple[float, float, float]) -> str:
    """A paired ratio with its interquartile range: ``1.02x (IQR 0.97-1.08)``."""
    return f"{ratio(r[0])} (IQR {r[1]:.2f}-{r[2]:.2f})"


def say(message: str) -> None:
    """Progress for the person watching, on stderr."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


# -- results ------------------------------------------------------------------------------


@dataclass
class Check:
    """A measured number against its target."""

    what: str
    shown: str
    target: str
    ok: bool

    @property
    def status(self) -> str:
        return "PASS" if self.ok else "MISS"


@dataclass
class Table:
    """One section's results."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Aligned plain text, for the terminal."""
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        out = [self.title, "=" * len(self.title)]
        out.append("  ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=True)))
        out.append("  ".join("-" * w for w in widths))
        for row in self.rows:
            out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        out += [f"  {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        """A ``###`` heading, a Markdown table and the notes as a list."""
        out = [f"### {self.title}", ""]
        out.append("| " + " | ".join(self.headers) + " |")
        out.append("|" + "|".join("---" for _ in self.headers) + "|")
        for row in self.rows:
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)


@dataclass
class Report:
    """Tables and targeted numbers, printed as they are produced."""

    tables: list[Table] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def add(self, table: Table) -> None:
        self.tables.append(table)
        print("\n" + table.text(), flush=True)

    def check(self, what: str, shown: str, target: str, ok: bool) -> Check:
        c = Check(what, shown, target, ok)
        self.checks.append(c)
        return c

    def summary(self) -> Table:
        table = Table("Targets", ["check", "measured", "target", "status"])
        for c in self.checks:
            table.rows.append([c.what, c.shown, c.target, c.status])
        return table

    def markdown(self, section: str, header: Sequence[str], *extra: str) -> str:
        """The whole report as the Markdown section headed ``section``."""
        parts = [section, *header, *(t.markdown() for t in self.tables)]
        if self.checks:
            parts.append(self.summary().markdown())
        return "\n\n".join([*parts, *extra])


# -- docs/benchmarks.md -------------------------------------------------------------------


def replace_section(path: Path, section: str, body: str) -> None:
    """Replace (or append) the section of ``path`` headed ``section`` with ``body``.

    A section runs from its ``## `` heading to the next ``## `` heading; the others stay
    as they are.
    """
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(section)
    if start >= 0:
        end = text.find("\n## ", start + len(section))
        rest = text[end + 1 :] if end >= 0 else ""
        text = text[:start].rstrip("\n") + "\n\n" + body + "\n" + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def git_revision() -> str:
    """The checkout's short revision, flagged when it has uncommitted changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (with uncommitted changes)" if dirty else "")
