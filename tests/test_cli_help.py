"""The command line explains itself: help for every argument, --version, parametrised
metric names, a start line and line progress in logs, weights verify's exit code."""
import argparse

from conftest import cli, write_suite
from harness import __version__
from harness.cli import _parser


def _actions(parser, path="avatarbench"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        yield path, action


def test_every_argument_has_help():
    missing = [f"{path}: {a.dest}" for path, a in _actions(_parser())
               if not (a.help and a.help.strip()) and a.help != argparse.SUPPRESS]
    assert not missing, missing


def test_version_and_parametrised_metrics():
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"avatarbench {__version__}"
    r = cli("list", "metrics")
    assert r.returncode == 0
    line = next(x for x in r.stdout.splitlines() if x.startswith("latency_ms@DEVICE"))
    assert "jetson-xavier-nx" in line and "estimated" in line


def test_run_says_how_many_cells_and_prints_progress_lines_when_not_a_terminal(tmp_path):
    s = write_suite(tmp_path / "s.yaml")     # nota-wav2lip x (params, size_mb)
    r = cli("run", s, "--out", tmp_path / "run")   # stderr is a pipe here, not a terminal
    assert r.returncode == 0, r.stderr
    assert f"tiny: 2 cells to compute (1 variants x 2 metrics) into {tmp_path / 'run'}" in r.stderr
    assert "tiny: 2/2 cells (100%)" in r.stderr and "\r" not in r.stderr
    r = cli("run", s, "--out", tmp_path / "run", "--no-progress")
    assert "2 cells already recorded, 0 to go" in r.stderr and "cells (" not in r.stderr
