"""Which member of a package archive holds its variables; first rank wins.

1. ``<package>/files/variables.yml`` (where the predecessor's model template
   puts it; ``.yaml`` and ``.json`` too);
2. ``<package>/variables.yml``, ``.yaml`` or ``.json``;
3. any other YAML or JSON file in the import package whose top level has
   ``input_variables`` and ``output_variables`` (a lume-model config).

``<package>`` is the import package's directory, at the archive's top or
under ``src/``. Two candidates at one rank are an error naming both; no
candidate means the package declares no variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Optional

from lume_services.errors import VariablesFileError
from lume_services.variables.formats import SECTIONS, Problem, looks_like_variables, parse, variables_from
from lume_services.variables.types import NO_VARIABLES, Variables

SUFFIXES = (".yml", ".yaml", ".json")
MAX_MEMBER_NAME = 1000  # deployment_variables.source_file
_RANKED = ("files/variables", "variables")


def candidate(member: str) -> bool:
    """Whether an archive member could hold variables (read before the import name is known)."""
    return member.endswith(SUFFIXES)


def named(member: str) -> bool:
    """Whether a member has a rank-1 or rank-2 name (such a file must be readable, whatever its size)."""
    path = PurePosixPath(member)
    stem = str(path.with_suffix("")) if path.suffix in SUFFIXES else ""
    return stem.endswith(("/files/variables", "/variables"))


def find_variables(archive: str, texts: Mapping[str, str], import_name: str) -> Variables:
    """The variables of the package in ``archive`` whose members' texts are ``texts``."""
    roots = [f"{root}{import_name.replace('.', '/')}/" for root in ("", "src/")]
    inside = sorted(m for m in texts if candidate(m) and m.startswith(tuple(roots)))
    ranks = [[m for m in inside if m in {f"{r}{stem}{x}" for r in roots for x in SUFFIXES}] for stem in _RANKED]
    for ranked in ranks:
        chosen = _one(archive, ranked)
        if chosen is not None:
            return _read(archive, chosen, _parsed(archive, chosen, texts[chosen]))
    configs = {}
    for member in inside:
        if looks_like_variables(texts[member]):
            try:
                parsed = parse(texts[member], member)  # parsed once: kept for reading it
            except Problem:
                continue  # an unreadable file is not a lume-model config
            if isinstance(parsed[0], dict) and all(k in parsed[0] for k in SECTIONS):
                configs[member] = parsed
    chosen = _one(archive, sorted(configs))
    return NO_VARIABLES if chosen is None else _read(archive, chosen, configs[chosen])


def _one(archive: str, members: list[str]) -> Optional[str]:
    if len(members) > 1:
        raise VariablesFileError(
            archive, members[0], f"{' and '.join(repr(m) for m in members)} both declare variables; keep one"
        )
    return members[0] if members else None


def _parsed(archive: str, member: str, text: str) -> tuple[Any, dict[str, dict[str, int]]]:
    try:
        return parse(text, member)
    except Problem as exc:
        raise VariablesFileError(archive, member, exc.problem, line=exc.line, variable=exc.variable) from None


def _read(archive: str, member: str, parsed: tuple[Any, dict[str, dict[str, int]]]) -> Variables:
    if len(member) > MAX_MEMBER_NAME:
        raise VariablesFileError(archive, member[:80] + "...", f"its name is longer than {MAX_MEMBER_NAME} characters")
    try:
        return variables_from(*parsed, member)
    except Problem as exc:
        raise VariablesFileError(archive, member, exc.problem, line=exc.line, variable=exc.variable) from None
