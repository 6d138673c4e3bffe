"""parse_source: which source strings are accepted, and a clear refusal for every other one."""

from __future__ import annotations

from pathlib import Path

import pytest

from lume_services.environment.sources import Source, parse_source
from lume_services.errors import EnvironmentResolutionError, SourceError


@pytest.fixture
def sdist(tmp_path: Path) -> Path:
    path = tmp_path / "my_model-0.1.0.tar.gz"
    path.write_bytes(b"not inspected here")
    return path


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    path = tmp_path / "my_model-0.1.0-py3-none-any.whl"
    path.write_bytes(b"not inspected here")
    return path


class TestAcceptedURLs:
    @pytest.mark.parametrize(
        "url",
        [
            "https://github.com/slaclab/my-model/releases/download/v0.1.0/my_model-0.1.0.tar.gz",
            "https://files.example.org/a/b/my_model-0.1.0-py3-none-any.whl",
            "https://127.0.0.1:8443/my_model-0.1.0.tar.gz",
            "HTTPS://Downloads.Example.ORG/my_model-0.1.0.tar.gz",
            "Https://example.org/my_model-0.1.0.tar.gz?token=abc",
        ],
    )
    def test_https_on_any_host_in_any_case(self, url):
        source = parse_source(url)
        assert source.kind == "url"
        assert source.original == url
        assert source.url is not None and source.url.startswith("https://")
        assert source.path is None
        assert source.filename in ("my_model-0.1.0.tar.gz", "my_model-0.1.0-py3-none-any.whl")

    def test_percent_encoded_file_name_is_decoded(self):
        source = parse_source("https://example.org/dl/my%2Dmodel-0.1.0.tar.gz")
        assert source.filename == "my-model-0.1.0.tar.gz"

    def test_http_only_when_allowed(self):
        source = parse_source("http://127.0.0.1:8080/files/my_model-0.1.0.tar.gz", allow_http=True)
        assert source.kind == "url"
        assert source.filename == "my_model-0.1.0.tar.gz"


class TestAcceptedLocal:
    def test_file_url(self, sdist):
        url = sdist.as_uri()
        assert url.startswith("file:///")
        source = parse_source(url)
        assert source == Source(kind="archive", original=url, path=sdist.resolve())
        assert source.filename == sdist.name

    def test_file_url_with_localhost_and_upper_case_scheme(self, wheel):
        url = "FILE://localhost" + wheel.as_uri().removeprefix("file://")
        source = parse_source(url)
        assert source.kind == "archive"
        assert source.path == wheel.resolve()

    def test_file_url_with_escapes(self, tmp_path):
        folder = tmp_path / "with space"
        folder.mkdir()
        archive = folder / "my_model-0.1.0.tar.gz"
        archive.write_bytes(b"x")
        source = parse_source(archive.as_uri())
        assert "%20" in archive.as_uri()
        assert source.path == archive.resolve()

    @pytest.mark.parametrize("which", ["sdist", "wheel"])
    def test_local_archive_path(self, request, which):
        path = request.getfixturevalue(which)
        for given in (str(path), path):  # str and os.PathLike
            source = parse_source(given)
            assert source.kind == "archive"
            assert source.path == path.resolve()
            assert source.original == str(path)

    def test_zip_sdist(self, tmp_path):
        path = tmp_path / "old_model-1.0.zip"
        path.write_bytes(b"x")
        assert parse_source(path).kind == "archive"

    def test_relative_and_home_paths(self, sdist, monkeypatch):
        monkeypatch.chdir(sdist.parent)
        source = parse_source(sdist.name)
        assert source.path == sdist.resolve() and source.original == sdist.name
        monkeypatch.setenv("HOME", str(sdist.parent))
        assert parse_source(f"~/{sdist.name}").path == sdist.resolve()

    def test_project_directory(self, tmp_path):
        project = tmp_path / "my-model"
        project.mkdir()
        source = parse_source(str(project))
        assert source.kind == "directory"
        assert source.path == project.resolve()
        assert parse_source(project.as_uri()).kind == "directory"


class TestRefused:
    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("http://example.org/my_model-0.1.0.tar.gz", "LUME_ENVIRONMENT__ALLOW_HTTP"),
            ("HTTP://example.org/my_model-0.1.0.tar.gz", "plain http is refused"),
            ("ftp://example.org/my_model-0.1.0.tar.gz", "scheme 'ftp' is not accepted"),
            ("git+ssh://git@github.com/slaclab/my-model.git", "scheme 'git+ssh' is not accepted"),
            ("data:application/gzip;base64,H4sIAAAAAAAAAwMAAAAAAAAAAAA=", "scheme 'data' is not accepted"),
            ("file://otherhost/tmp/my_model-0.1.0.tar.gz", "must be local, not on host 'otherhost'"),
            ("https:///my_model-0.1.0.tar.gz", "no host"),
            ("https://example.org/", "is not a package archive"),
            ("https://example.org/download/README.txt", "'README.txt' is not a package archive"),
            ("https://example.org/.tar.gz", "is not a package archive"),
            ("/no/such/dir/my_model-0.1.0.tar.gz", "no such file or directory"),
            ("file:///no/such/dir/my_model-0.1.0.tar.gz", "no such file or directory"),
        ],
    )
    def test_names_the_value_and_the_reason(self, value, reason):
        with pytest.raises(SourceError) as info:
            parse_source(value)
        assert info.value.source == value
        assert repr(value) in str(info.value)
        assert reason in str(info.value)
        assert isinstance(info.value, EnvironmentResolutionError)

    def test_ftp_refused_even_when_http_is_allowed(self):
        with pytest.raises(SourceError, match="'ftp' is not accepted"):
            parse_source("ftp://example.org/my_model-0.1.0.tar.gz", allow_http=True)

    def test_existing_file_that_is_not_an_archive(self, tmp_path):
        notes = tmp_path / "notes.txt"
        notes.write_text("hello")
        with pytest.raises(SourceError, match="'notes.txt' is not a package archive") as info:
            parse_source(str(notes))
        assert str(notes) in str(info.value)

    @pytest.mark.parametrize("value", ["", "   "])
    def test_empty(self, value):
        with pytest.raises(SourceError, match="it is empty"):
            parse_source(value)

    def test_nul_character(self):
        with pytest.raises(SourceError, match="NUL"):
            parse_source("/tmp/a\x00b.tar.gz")


def test_archive_suffix_is_case_sensitive_like_installers(tmp_path):
    from lume_services.environment.sources import parse_source

    path = tmp_path / "my_model-0.1.0.TAR.GZ"
    path.write_bytes(b"x")
    with pytest.raises(SourceError, match="not a package archive"):
        parse_source(str(path))


@pytest.mark.parametrize(
    "url, recorded",
    [
        (
            "https://user:tok3n@example.org/a/my_model-0.1.0.tar.gz",
            "https://example.org/a/my_model-0.1.0.tar.gz",
        ),
        ("https://tok3n@example.org:8443/x.whl", "https://example.org:8443/x.whl"),
        ("https://example.org/x.whl", "https://example.org/x.whl"),
    ],
)
def test_credentials_are_never_recorded(url, recorded):
    from lume_services.environment.sources import without_credentials

    assert without_credentials(url) == recorded
