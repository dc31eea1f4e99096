"""The ``lakehouse`` command line (typer + rich), a thin layer over :mod:`lakehouse.client`.

The console script is :func:`lakehouse.cli.main.main`; ``python -m lakehouse.cli`` works too.
"""
