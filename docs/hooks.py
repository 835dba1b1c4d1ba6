"""mkdocs hook: pages that are generated from the code, so they cannot go stale.

* A line ``::: api PACKAGE`` becomes one mkdocstrings block per name of the package's
  ``__all__``, grouped into classes and functions, errors, and constants: a name added to a
  package appears in the reference without editing the page, and its docstring is rendered
  (and checked, the build being strict) from the code.
* A line ``::: error-tree PACKAGE...`` becomes the tree of those packages' public exceptions,
  each with the builtin exceptions it is also, linked to its reference entry.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

API_LINE = re.compile(r"^::: api (?P<package>[\w.]+)$", re.MULTILINE)
TREE_LINE = re.compile(r"^::: error-tree (?P<packages>[\w. ]+)$", re.MULTILINE)


def _kind(value: object) -> str:
    if isinstance(value, type) and issubclass(value, BaseException):
        return "Errors"
    if isinstance(value, type) or callable(value):
        return "Classes and functions"
    return "Constants"


def api_blocks(package: str) -> str:
    """The markdown of ``package``'s public names, one section per kind."""
    module = importlib.import_module(package)
    groups: dict[str, list[str]] = {"Classes and functions": [], "Errors": [], "Constants": []}
    for name in module.__all__:
        groups[_kind(getattr(module, name))].append(f"::: {package}.{name}\n")
    return "\n".join(
        f"## {title}\n\n" + "\n".join(blocks) for title, blocks in groups.items() if blocks
    )


def _public_errors(packages: list[str]) -> dict[type, str]:
    """Each public exception class of ``packages``, with the name it is documented under."""
    found: dict[type, str] = {}
    for package in packages:
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if _kind(value) == "Errors":
                found.setdefault(value, f"{package}.{name}")
    return found


def _also(cls: type, parent: type | None) -> list[type]:
    """The classes ``cls`` also is, besides ``parent`` and its bases: the most derived ones
    (``ConnectionError``, not ``OSError`` too)."""
    inherited = set(parent.__mro__ if parent else (Exception,)) | {BaseException, object}
    others = [base for base in cls.__mro__[1:] if base not in inherited]
    return [b for b in others if not any(b in o.__mro__[1:] for o in others)]


def _name(cls: type, errors: dict[type, str]) -> str:
    if cls in errors:
        return f"[`{errors[cls]}`][{errors[cls]}]"
    if cls.__module__ == "builtins":
        return cls.__name__
    return f"`{cls.__module__}.{cls.__qualname__}`"


def error_tree(packages: list[str]) -> str:
    """A nested markdown list: each error under its first documented base class."""
    errors = _public_errors(packages)
    children: dict[type | None, list[type]] = {}
    for cls in errors:
        parent = next((base for base in cls.__mro__[1:] if base in errors), None)
        children.setdefault(parent, []).append(cls)

    def lines(parent: type | None, depth: int) -> list[str]:
        out = []
        for cls in children.get(parent, []):
            path = errors[cls]
            also = ", ".join(_name(base, errors) for base in _also(cls, parent))
            mixin = f" (also {also})" if also else ""
            out.append(f"{'    ' * depth}* [`{path}`][{path}]{mixin}")
            out += lines(cls, depth + 1)
        return out

    return "\n".join(lines(None, 0)) + "\n"


def on_page_markdown(markdown: str, **_: Any) -> str:
    markdown = TREE_LINE.sub(lambda match: error_tree(match["packages"].split()), markdown)
    return API_LINE.sub(lambda match: api_blocks(match["package"]), markdown)
