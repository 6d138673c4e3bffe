"""Read a package archive's metadata without running or extracting it.

Wheels, setuptools sdists (pyproject or legacy ``setup.py``, entry points in
``*.egg-info/entry_points.txt``) and hatchling/flit/pdm sdists (entry points
only in ``pyproject.toml``) are understood. Only a few small members are read
(each at most 1 MiB; YAML and JSON files only when they could hold the
package's variables, see lume_services.variables.locate), the uncompressed total and the member count are capped
so a decompression bomb is refused quickly, and members that could escape an
extraction directory (``..``, absolute names, links, devices) are refused.
"""

from __future__ import annotations

import ast
import gzip
import importlib.metadata
import io
import re
import tarfile
import tomllib
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Optional

from packaging.metadata import parse_email
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from lume_services.environment.settings import EnvironmentSettings
from lume_services.errors import NoFlowFoundInPackageError, PackageInspectionError, UnsafeArchiveError
from lume_services.variables import NO_VARIABLES, Variables
from lume_services.variables.formats import looks_like_variables
from lume_services.variables.locate import candidate, find_variables, named

MEMBER_CAP = 1024 * 1024
MAX_DEPTH = 12  # directories deep a variables file may sit
ENTRY_POINT_GROUP = "orchestration"
_IMPORT_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_IMAGE_REF = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)


@dataclass(frozen=True)
class EntryPointRef:
    name: str
    value: str


@dataclass(frozen=True)
class PackageInfo:
    """What registration needs to know about an archive, read without running it."""

    filename: str
    kind: str  # "wheel" or "sdist"
    name: str
    version: str
    requires_python: Optional[str]
    requires_dist: tuple[str, ...]
    flow: EntryPointRef
    model: Optional[EntryPointRef]
    image: Optional[str]
    variables: Variables = NO_VARIABLES

    @property
    def import_name(self) -> str:
        """The import package: the entry point's ``<pkg>`` in ``<pkg>.flow``."""
        return self.flow.name.removesuffix(".flow")

    def check_python(self, python_version: str) -> None:
        if not self.requires_python:
            return
        try:
            ok = SpecifierSet(self.requires_python).contains(python_version, prereleases=True)
        except InvalidSpecifier:
            raise PackageInspectionError(
                self.filename, f"its Requires-Python {self.requires_python!r} is invalid"
            ) from None
        if not ok:
            raise PackageInspectionError(
                self.filename,
                f"it requires Python {self.requires_python}, but environments use Python {python_version}",
            )


class _ArchiveDist(importlib.metadata.Distribution):
    """Entry points parsed by the standard library from member texts."""

    def __init__(self, texts: dict[str, str]) -> None:
        self._texts = texts

    def read_text(self, filename: str) -> Optional[str]:
        return self._texts.get(filename)

    def locate_file(self, path: Any) -> Any:
        raise NotImplementedError


class _Capped(io.RawIOBase):
    """Counts decompressed bytes and refuses to go past a cap."""

    def __init__(self, inner: BinaryIO, cap: int, archive: str) -> None:
        self.inner, self.cap, self.count, self.archive = inner, cap, 0, archive

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        self.count += len(data)
        if self.count > self.cap:
            raise UnsafeArchiveError(self.archive, f"it expands to more than {self.cap} bytes")
        buffer[: len(data)] = data
        return len(data)


def inspect_archive(path: Path, settings: EnvironmentSettings) -> PackageInfo:
    """Describe the archive at ``path`` (a wheel or an sdist)."""
    name = path.name
    if name.endswith(".whl"):
        texts = _read_zip(path, settings, wheel=True)
        kind = "wheel"
    elif name.endswith(".tar.gz"):
        texts = _read_tar(path, settings)
        kind = "sdist"
    elif name.endswith(".zip"):
        texts = _read_zip(path, settings, wheel=False)
        kind = "sdist"
    else:
        raise PackageInspectionError(name, "it is neither a wheel nor an sdist")
    return _describe(name, kind, texts)


# -- reading members ---------------------------------------------------------------


def _wanted(rel: PurePosixPath) -> bool:
    parts = rel.parts
    if rel.name in ("PKG-INFO", "METADATA", "pyproject.toml") and len(parts) <= 2:
        return True
    if rel.name == "entry_points.txt" and len(parts) <= 3:
        return parts[-2].endswith((".egg-info", ".dist-info"))
    return (rel.name == "_image.py" and len(parts) <= 3) or (candidate(rel.name) and len(parts) <= MAX_DEPTH)


def _check_name(archive: str, name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts or "\\" in name:
        raise UnsafeArchiveError(archive, f"member {name!r} would be written outside the target directory")
    return path


def _read_tar(path: Path, settings: EnvironmentSettings) -> dict[str, str]:
    texts: dict[str, str] = {}
    archive = path.name
    with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as gz:
        capped = io.BufferedReader(_Capped(gz, settings.max_expanded_bytes, archive), 1024 * 1024)
        try:
            with tarfile.open(fileobj=capped, mode="r|") as tar:
                for count, member in enumerate(tar, start=1):
                    if count > settings.max_members:
                        raise UnsafeArchiveError(archive, f"it has more than {settings.max_members} members")
                    rel = _check_name(archive, member.name)
                    if not (member.isfile() or member.isdir()):
                        raise UnsafeArchiveError(archive, f"member {member.name!r} is a link or special file")
                    if member.isfile() and _wanted(
                        PurePosixPath(*rel.parts[1:]) if len(rel.parts) > 1 else rel
                    ):
                        _keep(texts, archive, member.name, member.size, lambda m=member: tar.extractfile(m))
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
            raise PackageInspectionError(archive, f"it is not a readable .tar.gz ({exc})") from None
    return _strip_root(texts)


def _read_zip(path: Path, settings: EnvironmentSettings, *, wheel: bool) -> dict[str, str]:
    archive = path.name
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > settings.max_members:
                raise UnsafeArchiveError(archive, f"it has more than {settings.max_members} members")
            if sum(i.file_size for i in infos) > settings.max_expanded_bytes:
                raise UnsafeArchiveError(
                    archive, f"it expands to more than {settings.max_expanded_bytes} bytes"
                )
            texts: dict[str, str] = {}
            for info in infos:
                rel = _check_name(archive, info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UnsafeArchiveError(archive, f"member {info.filename!r} is a symbolic link")
                inner = rel if wheel else PurePosixPath(*rel.parts[1:]) if len(rel.parts) > 1 else rel
                if not info.is_dir() and _wanted(inner):
                    _keep(texts, archive, info.filename, info.file_size, lambda i=info: zf.open(i))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # corrupt deflate data, truncation, unsupported compression, encrypted members
        raise PackageInspectionError(archive, f"it is not a readable zip archive ({exc})") from None
    return texts if wheel else _strip_root(texts)


def _keep(texts: dict[str, str], archive: str, name: str, size: int, opener: Any) -> None:
    maybe_variables = candidate(name)  # kept only if it could be a variables file
    if size > MEMBER_CAP:
        if maybe_variables and not named(name):
            return  # a large data file of the package, not a variables file
        raise PackageInspectionError(archive, f"its {name!r} is larger than {MEMBER_CAP} bytes")
    with opener() as fh:
        data = fh.read(MEMBER_CAP + 1)
    text = data.decode("utf-8", errors="replace")
    if not maybe_variables or named(name) or looks_like_variables(text):
        texts[name] = text


def _strip_root(texts: dict[str, str]) -> dict[str, str]:
    """Sdist members relative to their top directory (``name-version/``)."""
    return {str(PurePosixPath(*PurePosixPath(k).parts[1:])): v for k, v in texts.items() if "/" in k}


# -- interpreting them ---------------------------------------------------------------


def _describe(filename: str, kind: str, texts: dict[str, str]) -> PackageInfo:
    meta_name = (
        next((k for k in texts if k.endswith(".dist-info/METADATA")), None) if kind == "wheel" else "PKG-INFO"
    )
    if meta_name is None or meta_name not in texts:
        raise PackageInspectionError(
            filename, f"it has no {'METADATA' if kind == 'wheel' else 'PKG-INFO'} file"
        )
    raw, _ = parse_email(texts[meta_name])
    name, version = raw.get("name"), raw.get("version")
    if not name or not version:
        raise PackageInspectionError(filename, "its metadata lacks Name or Version")
    _check_filename(filename, kind, name, version)
    entry_points = _entry_points(filename, kind, meta_name, texts)
    flows = [ep for ep in entry_points if ep.name.endswith(".flow")]
    if not flows:
        raise NoFlowFoundInPackageError(filename)
    if len(flows) > 1:
        names = ", ".join(sorted(ep.name for ep in flows))
        raise PackageInspectionError(filename, f"it declares several flow entry points ({names}); keep one")
    flow = flows[0]
    import_name = flow.name.removesuffix(".flow")
    if not _IMPORT_NAME.fullmatch(import_name):
        raise PackageInspectionError(
            filename, f"entry point {flow.name!r} does not name an importable package"
        )
    model = next((ep for ep in entry_points if ep.name == f"{import_name}.model"), None)
    image = _image_from_urls(raw.get("project_urls") or {}, version) or _image_from_module(
        texts, import_name, version
    )
    return PackageInfo(
        filename=filename, kind=kind, name=name, version=version,
        requires_python=raw.get("requires_python"), requires_dist=tuple(raw.get("requires_dist") or ()),
        flow=flow, model=model, image=image, variables=find_variables(filename, texts, import_name),
    )  # fmt: skip


def _check_filename(filename: str, kind: str, name: str, version: str) -> None:
    try:
        if kind == "wheel":
            file_name, file_version, *_ = parse_wheel_filename(filename)
        else:
            file_name, file_version = parse_sdist_filename(filename)  # .tar.gz or .zip
    except (InvalidSdistFilename, InvalidWheelFilename):
        raise PackageInspectionError(
            filename, "its file name is not <name>-<version> as installers expect"
        ) from None
    try:
        meta_version = Version(version)
    except InvalidVersion:
        raise PackageInspectionError(
            filename, f"its metadata version {version!r} is not a valid version"
        ) from None
    if canonicalize_name(file_name) != canonicalize_name(name) or file_version != meta_version:
        raise PackageInspectionError(
            filename, f"its file name says {file_name} {file_version} but its metadata says {name} {version}"
        )


def _entry_points(filename: str, kind: str, meta_name: str, texts: dict[str, str]) -> list[EntryPointRef]:
    if kind == "wheel":  # only the wheel's own .dist-info counts; installers ignore pyproject.toml
        ep_file: Optional[str] = meta_name.rsplit("/", 1)[0] + "/entry_points.txt"
        ep_file = ep_file if ep_file in texts else None
    else:
        ep_file = next((k for k in texts if k.endswith("entry_points.txt")), None)
    if ep_file is not None:
        eps = _ArchiveDist({"entry_points.txt": texts[ep_file]}).entry_points.select(group=ENTRY_POINT_GROUP)
        return [EntryPointRef(ep.name, ep.value) for ep in eps]
    if kind == "sdist" and "pyproject.toml" in texts:
        return _pyproject_entry_points(filename, texts["pyproject.toml"])
    return []


def _pyproject_entry_points(filename: str, text: str) -> list[EntryPointRef]:
    try:
        project = tomllib.loads(text).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        raise PackageInspectionError(filename, f"its pyproject.toml is invalid ({exc})") from None
    if "entry-points" in project.get("dynamic", []):
        raise PackageInspectionError(
            filename, "its entry points are dynamic and not in the sdist; register a wheel instead"
        )
    group = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    return [EntryPointRef(str(k), str(v)) for k, v in group.items()]


def _image_from_urls(urls: dict[str, str], version: str) -> Optional[str]:
    for label, url in urls.items():
        if re.sub(r"[^a-z0-9]", "", label.lower()) == "containerimage":
            ref = url.strip().removeprefix("docker://")
            last = ref.rsplit("/", 1)[-1]
            if ":" not in last and "@" not in last:
                ref = f"{ref}:v{version}"
            return ref
    return None


def _image_from_module(texts: dict[str, str], import_name: str, version: str) -> Optional[str]:
    top = import_name.split(".")[0]
    source = texts.get(f"{top}/_image.py") or texts.get(f"src/{top}/_image.py")
    if source is None:
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "IMAGE" for t in node.targets
        ):
            return _literal_image(node.value, version)
    return None


def _literal_image(node: ast.expr, version: str) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if not isinstance(node, ast.JoinedStr):
        return None
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(value.value)
        elif (
            isinstance(value, ast.FormattedValue)
            and isinstance(value.value, ast.Name)
            and value.value.id == "__version__"
            and value.format_spec is None
            and value.conversion == -1
        ):
            parts.append(version)
        else:
            return None
    return "".join(parts)


def valid_image(ref: str) -> bool:
    return bool(_IMAGE_REF.fullmatch(ref)) and len(ref) <= 512
