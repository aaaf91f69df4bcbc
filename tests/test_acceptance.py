"""Acceptance: a real `darkroom worker` daemon fed from another process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import click
import pytest

from tests.conftest import all_backends, run_cli, wait_for
from tests.daemon import launch, stop_piped
from tests.imagefiles import photo

pytestmark = pytest.mark.acceptance


def start_worker(config: Path, *args: str) -> subprocess.Popen[str]:
    return launch(config, "worker", *args)



@all_backends
def test_worker_daemon_processes_and_stops_cleanly_on_sigterm(make_config, tmp_path: Path) -> None:
    cfg = make_config(queue={"workers": 2})
    run_cli(cfg, "migrate")
    worker = start_worker(cfg)
    try:
        files = [str(photo(tmp_path / f"p{i}.jpg", (400 + 10 * i, 300))) for i in range(4)]
        out = json.loads(run_cli(cfg, "enqueue", "--json", *files).stdout)
        assert len(out["enqueued"]) == 4

        def all_done() -> bool:
            counts = json.loads(run_cli(cfg, "status", "--json").stdout)["images"]
            return counts["completed"] == 4

        wait_for(all_done, timeout=60)
    finally:
        output = stop_piped(worker, timeout=45, must_stop=True)
    assert worker.returncode == 0, output
    counts = json.loads(run_cli(cfg, "status", "--json").stdout)["images"]
    assert counts == {"pending": 0, "processing": 0, "completed": 4, "failed": 0}
    assert "completed in" in output  # one log line per job


def test_every_command_has_help_with_an_example() -> None:
    # In-process: the help text is click's either way, and one interpreter start per
    # command (~18 of them, ~1 s each) bought nothing; tests/test_imports.py starts
    # real processes for what a fresh interpreter shows.
    from click.testing import CliRunner

    from worker.cli import COMMANDS, main

    names = main.list_commands(click.Context(main))
    assert names and set(COMMANDS) <= set(names), "no commands registered"
    for name in names:
        result = CliRunner().invoke(main, [name, "--help"], prog_name="python -m worker")
        assert result.exit_code == 0 and result.exception is None, (name, result.output)
        assert "Example" in result.stdout, f"`darkroom {name} --help` shows no example"
        example = result.stdout.split("Example", 1)[1]  # the usage line names the program otherwise
        assert "darkroom " in example, f"`darkroom {name} --help`: the example is not a darkroom command"


def test_bad_config_stops_at_start_with_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[variants]\nwidths = [320, 0]\n")
    proc = run_cli(cfg, "status", check=False)
    assert proc.returncode == 2
    assert "variants.widths" in proc.stderr and "expected" in proc.stderr
