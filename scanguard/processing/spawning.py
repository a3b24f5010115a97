"""Imported only by the forkserver that starts scanguard's workers: they never re-run the host's `__main__`.

A process started by forkserver or spawn normally re-imports the parent's main script (as `__mp_main__`)
before it runs its task, which re-runs a host script that has no `if __name__ == "__main__"` guard and
costs every worker the import of whatever the host's main imports. scanguard's workers need neither:
their task and processors are found by import path. The forkserver preloads this module, so the change
lives only in the forkserver and the workers forked from it; the host process never imports it.
"""

from __future__ import annotations

from multiprocessing import spawn


def _skip_main(*_args: object, **_kwargs: object) -> None:
    """The workers' stand-in for multiprocessing's main-module fix-ups."""


spawn._fixup_main_from_path = _skip_main  # type: ignore[attr-defined] # private, but the only hook there is
spawn._fixup_main_from_name = _skip_main  # type: ignore[attr-defined]
