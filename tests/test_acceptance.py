"""Acceptance: a real `darkroom worker` daemon fed from another process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    from worker.cli import main

    assert main.commands, "no commands registered"
    for name in main.commands:
        proc = subprocess.run([sys.executable, "-m", "worker", name, "--help"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (name, proc.stderr)
        assert "Example" in proc.stdout, f"`darkroom {name} --help` shows no example"
        assert f"darkroom {name}" in proc.stdout or "darkroom " in proc.stdout


def test_bad_config_stops_at_start_with_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[variants]\nwidths = [320, 0]\n")
    proc = run_cli(cfg, "status", check=False)
    assert proc.returncode == 2
    assert "variants.widths" in proc.stderr and "expected" in proc.stderr
