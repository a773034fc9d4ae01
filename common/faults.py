"""Named points in the money lifecycle where a test can cause a real failure.

Tests set `hook` to a function that, for example, runs `KILL CONNECTION` on Django's own
database connection at "pay.apply" — the only reliable way to lose the connection at an
exact point of a real transaction — or SIGKILLs its own process between two steps
("cancel.decided", "outbox.claimed:<topic>", "outbox.performed:<topic>"). In production
`hook` is None and this costs nothing."""

from __future__ import annotations

from collections.abc import Callable

hook: Callable[[str], None] | None = None


def fault_point(name: str) -> None:
    if hook is not None:
        hook(name)
