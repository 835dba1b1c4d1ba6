"""``aioamp doctor``'s output: aligned text for people, one JSON object for programs (its
shape is ``schema.json`` next to this module, a JSON Schema)."""

from __future__ import annotations

import functools
import json
import shutil
import textwrap
from collections import Counter
from importlib import resources
from typing import Any

from .facts import Facts, Finding, Status

_MARK = {Status.OK: "ok", Status.INFO: "info", Status.WARN: "WARN", Status.FAIL: "FAIL"}


def schema() -> dict[str, Any]:
    """The JSON Schema of :func:`to_json`'s output."""
    text = resources.files(__package__).joinpath("schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def counts(findings: list[Finding]) -> dict[str, int]:
    found = Counter(f.status for f in findings)
    return {status.value: found[status] for status in Status}


def to_json(facts: Facts, findings: list[Finding]) -> dict[str, Any]:
    return {
        "root": facts.root,
        "kernel": facts.kernel.release,
        "user": {"name": facts.user.name, "uid": facts.user.uid, "gids": sorted(facts.user.gids)},
        "findings": [
            {
                "check": f.check,
                "status": f.status.value,
                "summary": f.summary,
                "fix": f.fix,
                "details": f.details,
            }
            for f in findings
        ],
        "counts": counts(findings),
        "ok": not any(f.status is Status.FAIL for f in findings),
    }


def to_text(facts: Facts, findings: list[Finding]) -> str:
    where = "" if facts.root in ("/", "") else f" (root {facts.root})"
    lines = [
        f"aioamp doctor{where}: Linux {facts.kernel.release or '?'}, user {facts.user.name} "
        f"(uid {facts.user.uid})"
    ]
    width = max((len(f.check) for f in findings), default=0)
    columns = max(shutil.get_terminal_size().columns, 60)
    indent = " " * (width + 10)
    wrap = functools.partial(textwrap.wrap, break_on_hyphens=False, break_long_words=False)
    for f in findings:
        head = f"  {_MARK[f.status]:4}  {f.check:{width}}  "
        lines += wrap(f.summary, columns - 1, initial_indent=head, subsequent_indent=indent)
        if f.fix and f.status is not Status.OK:
            lines += wrap(
                f"fix: {f.fix}", columns - 1, initial_indent=indent, subsequent_indent=indent + "  "
            )
    tally = counts(findings)
    warn, fail = tally["warn"], tally["fail"]
    lines.append(
        f"{tally['ok']} ok, {tally['info']} info, {warn} warning{'s' * (warn != 1)}, "
        f"{fail} problem{'s' * (fail != 1)}"
    )
    return "\n".join(lines)
