"""The garbage collector is off while a command imports and on for its work, whatever the command does."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from worker import startup_gc
from worker.cli import main
from worker.context import Ctx, pass_ctx


@pytest.fixture
def probe_command() -> Iterator[list[tuple[str, bool]]]:
    """A throw-away `darkroom gc-probe [--fail]` that records the collector's state before and after ``ctx.app``."""
    seen: list[tuple[str, bool]] = []

    @click.command("gc-probe")
    @click.option("--fail", is_flag=True)
    @pass_ctx
    def probe(ctx: Ctx, fail: bool) -> None:
        seen.append(("before app", gc.isenabled()))
        if fail:
            raise RuntimeError("the command failed")
        ctx.app  # noqa: B018  (builds the App: the imports are done)
        seen.append(("after app", gc.isenabled()))

    main.add_command(probe)
    try:
        yield seen
    finally:
        main.commands.pop("gc-probe")


def test_a_command_imports_with_the_collector_off_and_works_with_it_on(config_path: Path,
                                                                      probe_command: list) -> None:
    assert gc.isenabled()
    result = CliRunner().invoke(main, ["--config", str(config_path), "gc-probe"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert probe_command == [("before app", False), ("after app", True)]
    assert gc.isenabled()


def test_the_collector_is_back_on_when_a_command_fails(config_path: Path, probe_command: list) -> None:
    result = CliRunner().invoke(main, ["--config", str(config_path), "gc-probe", "--fail"])
    assert isinstance(result.exception, RuntimeError)
    assert probe_command == [("before app", False)]
    assert gc.isenabled()


def test_a_bad_config_leaves_the_collector_on(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[queue]\nworkers = 0\n")
    result = CliRunner().invoke(main, ["--config", str(bad), "status"])
    assert result.exit_code == 2 and "queue.workers" in result.output
    assert gc.isenabled()


def test_pause_never_turns_on_a_collector_it_did_not_turn_off() -> None:
    gc.disable()
    try:
        startup_gc.pause()
        startup_gc.resume()
        assert not gc.isenabled()  # someone else's choice stands
        with startup_gc.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    startup_gc.pause()
    assert not gc.isenabled()
    startup_gc.resume()
    assert gc.isenabled()
    with startup_gc.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
