"""The one way tests and bench scripts start a long-running ``darkroom`` process.

``launch(config, "worker")`` runs ``python -m worker --config CONFIG worker`` as a
subprocess: without the caller's ``DARKROOM_*`` variables (the config file is
the whole configuration), in the config's directory, output piped (text) unless
told otherwise. :class:`Daemon` is the same process with its output in a log
file, and a ``cleanup`` that kills it and every process it forked, whatever
happened in the test; :func:`started_daemons` is the fixture body that starts
them for one test and cleans them all up at its end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tests.reliability.procs import descendants_of, is_running, kill_all


def daemon_env(**extra: str) -> dict[str, str]:
    """This process's environment minus ``DARKROOM_*``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DARKROOM_")}
    env.update(extra)
    return env


def launch(config: Path, *args: str, stdout: int | IO[Any] | None = subprocess.PIPE,
           stderr: int | IO[Any] | None = subprocess.STDOUT, text: bool = True,
           new_session: bool = False, env: dict[str, str] | None = None) -> subprocess.Popen[Any]:
    """Start ``python -m worker --config CONFIG ARGS...`` (``args`` e.g. ``("worker",)``).

    ``new_session`` puts it in its own process group, so ``os.killpg`` reaches
    everything it forks.
    """
    return subprocess.Popen([sys.executable, "-m", "worker", "--config", str(config), *args],
                            stdout=stdout, stderr=stderr, text=text,
                            env=daemon_env() if env is None else env,
                            cwd=config.parent, start_new_session=new_session)


def wait_started(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Read a piped daemon's output up to its "started" line (it has migrated and is consuming)."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("daemon exited during start:\n" + "".join(seen))
        seen.append(line)
        if " started: " in line:
            return "".join(seen)
    raise AssertionError("daemon did not start in time:\n" + "".join(seen))


def stop_piped(proc: subprocess.Popen[str], signum: int = signal.SIGTERM, timeout: float = 40,
               must_stop: bool = False) -> str:
    """Signal a piped daemon (from :func:`launch`) and return the rest of its output.

    If it is not gone after ``timeout`` it is killed (its whole process group
    when it has one), and with ``must_stop`` that is an AssertionError.
    """
    if proc.poll() is None:
        proc.send_signal(signum)
    try:
        return str(proc.communicate(timeout=timeout)[0])
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # launched with new_session: the group is its own
        except ProcessLookupError:
            proc.kill()
        out = str(proc.communicate()[0])
        if must_stop:
            raise AssertionError(f"daemon still running {timeout} s after signal {signum}:\n{out}") from None
        return out


class Daemon:
    """A ``darkroom`` process (``args`` e.g. ``("--log-level", "INFO", "worker")``) logging to a file."""

    def __init__(self, config: Path, *args: str, log_path: Path | None = None,
                 new_session: bool = False) -> None:
        self.config = config
        self.log_path = log_path or config.parent / f"worker-{time.monotonic_ns()}.log"
        self.new_session = new_session
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (open for the daemon's whole life, closed in stop())
        self.popen: subprocess.Popen[Any] = launch(config, *args, stdout=self._log, text=False,
                                                   new_session=new_session)
        self.seen: set[int] = set()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        """Everything it has written so far (stdout and stderr)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[int]:
        found = descendants_of(self.pid)
        self.seen.update(found)
        return found

    def wait_children(self, n: int, timeout: float = 60) -> list[int]:
        """Wait until it has at least ``n`` descendant processes (workers, scheduler)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kids = self.descendants()
            if len(kids) >= n:
                return kids
            if self.popen.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"worker has no {n} children after {timeout}s:\n{self.log()}")

    def send(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal it and wait for it; returns its exit status (-9 if it had to be killed after ``timeout``)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode

    def kill_group(self) -> None:
        """SIGKILL whatever is left of its process group (``new_session`` only)."""
        if not self.new_session:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def cleanup(self) -> None:
        """Kill it and every process it ever had (the ones seen, and those alive now)."""
        pids = [self.pid, *self.seen]
        if self.popen.poll() is None:
            pids.extend(descendants_of(self.pid))
        kill_all([p for p in pids if is_running(p)])
        self.kill_group()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


@contextmanager
def started_daemons(stop_signal: int | None = signal.SIGTERM, **options: Any) -> Iterator[Callable[..., Daemon]]:
    """``start(config, *args)`` for one test; at the end every daemon started is sent ``stop_signal``
    (None: not stopped first) and waited for, then killed with everything it forked.

    ``options`` are :class:`Daemon`'s (``new_session=True``), for every daemon started.
    """
    started: list[Daemon] = []

    def start(config: Path, *args: str, **more: Any) -> Daemon:
        daemon = Daemon(config, *args, **{**options, **more})
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            if stop_signal is not None:
                daemon.stop(stop_signal)
            daemon.cleanup()
