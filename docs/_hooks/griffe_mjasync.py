"""A griffe extension for mjasync's docstrings (loaded by mkdocstrings, see ``mkdocs.yml``).

Two things griffe does not do on its own:

* **attrs classes.** ``@attrs.frozen`` / ``@attrs.define`` write ``__init__`` at import time,
  so a static reading finds no signature, and the ``Args:`` of the class docstring look
  unknown. The signature is taken from the imported class instead.
* **reST roles.** The docstrings say :class:`Task` (read by ``help()`` and IDEs). On the site,
  a role naming a public name becomes a link to its reference entry; any other becomes code.
  ``Example::`` blocks and ``>>>`` sessions become fenced code.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj|const):`(~?)([^`]+)`")
_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: griffe.ParameterKind.positional_only,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: griffe.ParameterKind.positional_or_keyword,
    inspect.Parameter.VAR_POSITIONAL: griffe.ParameterKind.var_positional,
    inspect.Parameter.KEYWORD_ONLY: griffe.ParameterKind.keyword_only,
    inspect.Parameter.VAR_KEYWORD: griffe.ParameterKind.var_keyword,
}


def _public_names() -> dict[str, str]:
    """Each public name -> the identifier of its reference entry."""
    mjasync = importlib.import_module("mjasync")
    testing = importlib.import_module("mjasync.testing")
    names = {name: f"mjasync.{name}" for name in mjasync.__all__ if not name.startswith("_")}
    names.update({name: f"mjasync.testing.{name}" for name in testing.__all__})
    return names


def _role(match: re.Match[str], public: dict[str, str]) -> str:
    short, target = match.group(1), match.group(2).strip()
    bare = target.removeprefix("mjasync.testing.").removeprefix("mjasync.")
    label = bare.rsplit(".", 1)[-1] if short else bare
    if bare in public:
        return f"[`{label}`][{public[bare]}]"
    return f"`{label}`"


def _fence_literal_blocks(text: str) -> str:
    """``Intro::`` + an indented block, and bare ``>>>`` sessions, become fenced code."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.endswith("::") and not stripped.startswith(">>>"):
            # The literal block: a blank line, then lines indented deeper than this one.
            indent = len(line) - len(line.lstrip())
            end = index + 1
            while end < len(lines) and not lines[end].strip():
                end += 1
            block: list[str] = []
            while end < len(lines) and (
                not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
            ):
                block.append(lines[end])
                end += 1
            while block and not block[-1].strip():
                block.pop()
                end -= 1
            if block:
                intro = line[: len(line) - len(line.lstrip())] + stripped[:-1]
                if stripped == "::":
                    intro = ""
                elif not intro.rstrip().endswith(":"):
                    intro += ":"
                pad = " " * indent
                depth = min(len(b) - len(b.lstrip()) for b in block if b.strip())
                # A drawing (the error tree) is text; anything else is Python.
                language = "text" if any("├" in b or "└" in b for b in block) else "python"
                out.extend([intro.rstrip(), "", pad + "```" + language])
                out.extend(pad + b[depth:] if b.strip() else "" for b in block)
                out.append(pad + "```")
                index = end
                continue
        if stripped.startswith(">>>"):
            margin = line[: len(line) - len(line.lstrip())]
            session: list[str] = []
            while index < len(lines) and lines[index].strip() and lines[index].startswith(margin):
                session.append(lines[index][len(margin) :])
                index += 1
            out.extend([margin + "```pycon", *(margin + s for s in session), margin + "```"])
            continue
        out.append(line)
        index += 1
    return "\n".join(out)


def _attrs_init(cls: griffe.Class) -> griffe.Function | None:
    """``__init__`` as attrs wrote it, read from the imported class."""
    try:
        module = importlib.import_module(cls.module.path)
        runtime = getattr(module, cls.name)
        signature = inspect.signature(runtime)
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    parameters = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
    for parameter in signature.parameters.values():
        annotation = parameter.annotation
        if annotation is inspect.Parameter.empty:
            annotation = None
        elif not isinstance(annotation, str):
            annotation = inspect.formatannotation(annotation)
        default = None if parameter.default is inspect.Parameter.empty else repr(parameter.default)
        parameters.append(
            griffe.Parameter(
                parameter.name, annotation=annotation, kind=_KINDS[parameter.kind], default=default
            )
        )
    return griffe.Function(
        "__init__",
        lineno=0,
        endlineno=0,
        parent=cls,
        parameters=griffe.Parameters(*parameters),
        returns="None",
    )


def _is_attrs(cls: griffe.Class) -> bool:
    for decorator in cls.decorators:
        path = getattr(decorator.value, "canonical_path", str(decorator.value))
        if path.split(".")[0] in {"attrs", "attr"}:
            return True
    return False


class MjasyncDocstrings(griffe.Extension):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._public: dict[str, str] | None = None

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.is_alias:
            return
        if isinstance(obj, griffe.Class) and "__init__" not in obj.members and _is_attrs(obj):
            init = _attrs_init(obj)
            if init is not None:
                obj.set_member("__init__", init)
        if obj.docstring is None:
            return
        if self._public is None:
            self._public = _public_names()
        public = self._public
        text = _ROLE.sub(lambda match: _role(match, public), obj.docstring.value)
        obj.docstring.value = _fence_literal_blocks(text)
