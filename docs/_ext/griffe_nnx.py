"""Griffe extension for nnx's API reference.

1. ``backends/`` is loaded as ``nnx.backends``. pyproject.toml installs it there
   (``package-dir``), but in the checkout it sits beside ``src/nnx``, where Griffe,
   reading ``src/`` statically, would not look: every public name that comes from it
   (``nnx.Backend``) would be an alias without a target.
2. Sphinx roles in docstrings (``:func:`save```, ``:mod:`.mpi```) become code spans
   linked to the object's entry in the reference where it has one (an optional
   cross-reference: a name the reference does not render stays plain code).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`~?([^`]+)`")


class NnxDocs(griffe.Extension):
    """Attach ``backends/`` as ``nnx.backends``; turn Sphinx roles into references."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name != "nnx":
            return
        if "backends" not in pkg.members:
            folder = Path(pkg.filepath).parent.parent.parent / "backends"  # src/nnx/__init__.py
            if (folder / "__init__.py").is_file():
                backends = _visit("backends", folder / "__init__.py", pkg, loader)
                for path in sorted(folder.glob("*.py")):
                    if path.stem != "__init__":
                        _visit(path.stem, path, backends, loader)
        for obj in _walk(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = ROLE.sub(lambda m, o=obj: _reference(o, m[1]),
                                               obj.docstring.value)


def _visit(name: str, path: Path, parent: griffe.Module,
           loader: griffe.GriffeLoader) -> griffe.Module:
    module = griffe.visit(
        name, path, path.read_text(encoding="utf-8"), parent=parent,
        extensions=loader.extensions, docstring_parser=loader.docstring_parser,
        docstring_options=loader.docstring_options,
        lines_collection=loader.lines_collection,
        modules_collection=loader.modules_collection,
    )
    parent.set_member(name, module)
    return module


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


def _reference(obj: griffe.Object, target: str) -> str:
    """``target`` as code, inside an optional cross-reference when it resolves."""
    path = _resolve(obj, target)
    code = f"`{target.lstrip('.')}`"
    return f'<autoref identifier="{path}" optional>{code}</autoref>' if path else code


def _resolve(obj: griffe.Object, target: str) -> str | None:
    if target.startswith("nnx."):
        return target
    module = obj if obj.is_module else obj.module
    if target.startswith("."):  # relative to the package the docstring belongs to
        return f"{module.path}{target}"
    head, _, rest = target.partition(".")
    for scope in (obj, module):
        try:
            found = scope.resolve(head)
        except (griffe.NameResolutionError, ValueError, AttributeError):
            continue
        return f"{found}.{rest}" if rest else found
    return None
