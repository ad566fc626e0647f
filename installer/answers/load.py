"""Where a Plan comes from: an answer file or a kickstart file, resolved against this machine."""

from __future__ import annotations

from dataclasses import replace

from installer.plan import Plan
from storage.discover import discover


def load_plan(*, answers: str | None = None, kickstart: str | None = None) -> Plan:
    """Load, validate and resolve; every problem is a `UserError` (exit 2), nothing touched."""
    from installer.answers import load_answers, resolve

    if kickstart:
        from installer.answers.kickstart import load_kickstart

        parsed = load_kickstart(kickstart)
        source = kickstart
    else:
        assert answers is not None
        parsed = load_answers(answers)
        source = answers
    plan = resolve(parsed, inventory=discover())
    return replace(plan, source=source)
