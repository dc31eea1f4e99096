"""Start-up of the ``lakehouse`` command against Python importing DuckDB, side by side.

Run: ``.venv/bin/python bench/startup.py [--rounds 9] [--markdown docs/benchmarks.md]``

Each round runs, as fresh processes one after the other (what a person typing the
command pays), with the interpreter running this script:

* baseline: ``python -c "import duckdb"`` and ``python -c "import duckdb;
  duckdb.sql('select 1').fetchall()"``;
* ``lakehouse --help``;
* ``lakehouse sql "select 1"`` on an embedded lakehouse (SQLite catalog);
* ``lakehouse sql "select count(*) from s.t"``: a query that reads an Iceberg table
  (10 rows), which needs PyIceberg and pyarrow.

``lakehouse`` is run as its console script runs it (``from lakehouse.cli.main import
main``), from the checkout this script belongs to. Medians over the rounds; the ratio is
per round, against ``import duckdb`` of the same round.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import REPO, Report, Table, median, paired_ratio, ratio_iqr, replace_section, say

SECTION = "## Start-up (bench/startup.py)"
LAKEHOUSE = "import sys; from lakehouse.cli.main import main; sys.argv[0] = 'lakehouse'; main()"


def run(argv: list[str], env: dict[str, str]) -> float:
    """Seconds the process ``argv`` took; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument(
        "--baseline",
        metavar="LABEL=CHECKOUT",
        help='also time `lakehouse --help` and `lakehouse sql "select 1"` from another '
        "checkout's src/ (e.g. main=../main), labelled LABEL",
    )
    args = parser.parse_args(argv)
    given = [a.split("=")[0] + "=…" if "=" in a else a for a in (argv or sys.argv[1:])]
    import duckdb

    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, DuckDB {duckdb.__version__}; load average at start "
        f"{os.getloadavg()[0]:.1f}. Command: `python bench/startup.py {' '.join(given)}`."
    )
    print(header)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "NESSIE_"))}
        env["LAKEHOUSE_HOME"] = str(Path(tmp) / "home")
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
        say("creating a lakehouse with one 10-row table")
        setup = (
            "import lakehouse, pyarrow as pa\n"
            "with lakehouse.connect(create=True) as lh:\n"
            "    c = lh.catalog('main'); c.create_namespace('s')\n"
            "    t = pa.table({'id': list(range(10))})\n"
            "    c.create_table('s.t', schema=t.schema).append(t)\n"
        )
        subprocess.run([py, "-c", setup], env=env, check=True, cwd=tmp)
        commands = {
            "python -c 'import duckdb'": [py, "-c", "import duckdb"],
            "python -c 'import duckdb; duckdb.sql(\"select 1\")'": [
                py,
                "-c",
                "import duckdb; duckdb.sql('select 1').fetchall()",
            ],
            "lakehouse --help": [py, "-c", LAKEHOUSE, "--help"],
            'lakehouse sql "select 1"': [py, "-c", LAKEHOUSE, "sql", "select 1"],
            'lakehouse sql "select count(*) from s.t"': [
                py,
                "-c",
                LAKEHOUSE,
                "sql",
                "select count(*) from s.t",
            ],
        }
        envs = {name: env for name in commands}
        if args.baseline:
            label, _, checkout = args.baseline.partition("=")
            source = Path(checkout).resolve() / "src"
            if not (source / "lakehouse" / "__init__.py").is_file():
                # else Python would import the installed lakehouse instead, silently
                raise SystemExit(f"--baseline: no src/lakehouse in {checkout}")
            other = dict(env, PYTHONPATH=str(source))
            for shown, argv in (
                ("lakehouse --help", ["--help"]),
                ('lakehouse sql "select 1"', ["sql", "select 1"]),
            ):
                name = f"{shown} ({label})"
                commands[name] = [py, "-c", LAKEHOUSE, *argv]
                envs[name] = other
        times: dict[str, list[float]] = {name: [] for name in commands}
        say(f"{args.rounds} rounds of {len(commands)} commands")
        for name, command in commands.items():  # warm the file cache once
            run(command, envs[name])
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(run(command, envs[name]))
    base = times["python -c 'import duckdb'"]
    report = Report()
    table = Table(
        f"Wall time of one command, fresh process ({args.rounds} rounds)",
        ["command", "p50", "vs import duckdb (median, IQR)"],
    )
    for name, values in times.items():
        table.rows.append(
            [name, f"{median(values) * 1000:.0f} ms", ratio_iqr(paired_ratio(base, values))]
        )
    table.notes.append(
        "`select 1` names no table: the statement is checked on DuckDB's parse tree and run "
        "on the same locked connection, its rows fetched as Python values; `--ref` is read "
        "from the SQLite file with sqlite3; SQLAlchemy, PyIceberg, sqlglot, pyarrow and numpy "
        "are not imported, and of the commands only `sql` is built."
    )
    if args.baseline:
        label = args.baseline.partition("=")[0]
        for shown in ("lakehouse --help", 'lakehouse sql "select 1"'):
            ours, theirs = times[shown], times[f"{shown} ({label})"]
            table.notes.append(
                f"{shown}: this checkout / {label}, per round: "
                f"{ratio_iqr(paired_ratio(theirs, ours))}."
            )
    report.add(table)
    help_p50 = median(times["lakehouse --help"])
    sql_p50 = median(times['lakehouse sql "select 1"'])
    report.check("lakehouse --help", f"{help_p50 * 1000:.0f} ms", "<= 300 ms", help_p50 <= 0.3)
    report.check(
        'lakehouse sql "select 1"', f"{sql_p50 * 1000:.0f} ms", "<= 600 ms", sql_p50 <= 0.6
    )
    print("\n" + report.summary().text())
    if args.markdown:
        replace_section(args.markdown, SECTION, report.markdown(SECTION, [header]))
        print(f"Markdown written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
