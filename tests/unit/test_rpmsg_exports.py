"""``rpmsg``'s public names: re-exported lazily, so importing the package loads nothing else.

(tests/test_layering.py imports each pure rpmsg module alone in a fresh interpreter and checks
that no I/O and no shell module comes with it.)
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rpmsg


def test_import_rpmsg_loads_none_of_its_modules() -> None:
    code = "import json, sys, rpmsg; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    loaded = set(json.loads(out))
    assert {m for m in loaded if m.startswith(("rpmsg.", "transports"))} == set()
    assert not loaded & {"asyncio", "anyio", "socket", "selectors", "mmap"}


def test_the_lazy_public_names_all_resolve() -> None:
    defined = {name for names in rpmsg._MODULES.values() for name in names}
    assert defined == set(rpmsg.__all__) and len(rpmsg.__all__) == len(set(rpmsg.__all__))
    for name in rpmsg.__all__:
        value = getattr(rpmsg, name)
        module = rpmsg._EXPORTS[name]
        assert value is getattr(sys.modules[f"rpmsg.{module}"], name)
    assert set(rpmsg.__all__) <= set(dir(rpmsg))
    with pytest.raises(AttributeError, match="no attribute 'bus'"):
        rpmsg.bus  # noqa: B018 - the old module is gone, not aliased
