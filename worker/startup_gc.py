"""The cyclic garbage collector at start-up: paused while a command imports, frozen before the workers fork.

A command's start imports SQLAlchemy, Pillow, numpy and the project: a few
hundred thousand objects that live as long as the process. The collector
runs many times over them meanwhile and finds nothing to free; pausing it
makes the imports ~9 % faster (``python -c 'import gc; gc.disable(); ...'``
vs the same with it on: 305 vs 334 ms for the worker's modules). It is back
on as soon as the command's work starts (:meth:`worker.context.Ctx.app`,
after the imports of :func:`worker.daemon.preload_job_modules`), and always
when the command returns.

Before the daemon forks its workers it also freezes what exists (the
pattern Python's documentation gives for ``gc.freeze``): the children's
collections never walk the parent's objects, so they do not write to, and
copy, the pages they share with it.

>>> with paused():  # doctest: +SKIP
...     import numpy
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_paused_here = False  # this module turned the collector off (it never turns on one it did not turn off)


def pause() -> None:
    """Turn the collector off for the imports that follow, if it is on."""
    global _paused_here
    if gc.isenabled():
        gc.disable()
        _paused_here = True


def resume() -> None:
    """Turn the collector back on if :func:`pause` turned it off."""
    global _paused_here
    if _paused_here:
        _paused_here = False
        gc.enable()


@contextmanager
def paused() -> Iterator[None]:
    """The collector off inside the block (unless it already was), back on after it."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def freeze_before_fork() -> None:
    """Move every object that exists into the permanent generation (see the module docstring)."""
    gc.freeze()
