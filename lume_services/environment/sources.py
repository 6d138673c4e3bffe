"""What a package source string means: a URL, a local archive or a project directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Union
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from lume_services.errors import SourceError

ARCHIVE_SUFFIXES = (".tar.gz", ".whl", ".zip")


def without_credentials(url: str) -> str:
    """The URL with any user:password@ removed (it is recorded and displayed)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class Source:
    """A parsed source. ``original`` is what the user gave and what gets recorded."""

    kind: Literal["url", "archive", "directory"]
    original: str
    url: Optional[str] = None
    path: Optional[Path] = None

    @property
    def filename(self) -> str:
        if self.kind == "url":
            assert self.url is not None
            return archive_filename(self.original, unquote(urlsplit(self.url).path.rsplit("/", 1)[-1]))
        assert self.path is not None
        return self.path.name


def archive_filename(source: str, name: str) -> str:
    if not name.endswith(ARCHIVE_SUFFIXES) or name.startswith(".") or "/" in name:
        raise SourceError(
            source, f"{name!r} is not a package archive (expected {', '.join(ARCHIVE_SUFFIXES)})"
        )
    return name


def parse_source(source_path: Union[str, os.PathLike[str]], *, allow_http: bool = False) -> Source:
    """Classify ``source_path``; refuse anything that is not an accepted source."""
    original = os.fspath(source_path)
    if not isinstance(original, str) or not original.strip():
        raise SourceError(str(source_path), "it is empty")
    if "\x00" in original:
        raise SourceError(original, "it contains a NUL character")
    parts = urlsplit(original.strip())
    scheme = parts.scheme.lower()
    if scheme in ("https", "http"):
        return _url_source(original, parts, scheme, allow_http)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise SourceError(original, f"file:// URLs must be local, not on host {parts.netloc!r}")
        return _local_source(original, Path(url2pathname(unquote(parts.path))))
    if scheme and len(scheme) > 1:  # one letter would be a Windows drive
        raise SourceError(
            original, f"scheme {scheme!r} is not accepted; use https://, file:// or a local path"
        )
    return _local_source(original, Path(original).expanduser())


def _url_source(original: str, parts, scheme: str, allow_http: bool) -> Source:
    if scheme == "http" and not allow_http:
        raise SourceError(
            original,
            "plain http is refused; use https, or set LUME_ENVIRONMENT__ALLOW_HTTP=true for a trusted mirror",
        )
    if not parts.hostname:
        raise SourceError(original, "the URL has no host")
    source = Source(kind="url", original=original, url=parts.geturl())
    source.filename  # noqa: B018 - validates the archive name
    return source


def _local_source(original: str, path: Path) -> Source:
    if path.is_dir():
        return Source(kind="directory", original=original, path=path.resolve())
    if not path.is_file():
        raise SourceError(original, f"no such file or directory {str(path)!r}")
    archive_filename(original, path.name)
    return Source(kind="archive", original=original, path=path.resolve())
