"""ArtifactStore.put: content-addressed storage of downloaded, copied and built artifacts."""

from __future__ import annotations

import hashlib
import multiprocessing

import pytest
from environment_helpers import MiB, files_under, sha256_of

from lume_services.environment.sources import parse_source
from lume_services.environment.store import ArtifactStore, normalize_expected
from lume_services.errors import ChecksumMismatchError, DownloadError, InstallError, ValidationError


def blob_files(store) -> list[str]:
    """Every file in the store (blobs and leftovers alike)."""
    return files_under(store.root)


class TestPutURL:
    def test_content_addressed_layout(self, store, http_server, payload):
        name, data = payload
        artifact = store.put(parse_source(http_server.url(f"files/{name}"), allow_http=True))
        sha = hashlib.sha256(data).hexdigest()
        assert artifact.sha256 == sha
        assert artifact.path == store.root / "blobs" / sha / name
        assert artifact.filename == name
        assert artifact.path.read_bytes() == data
        assert artifact.path.stat().st_mode & 0o777 == 0o644
        assert blob_files(store) == [f"blobs/{sha}/{name}"]  # no .part files left
        assert store.lookup(sha) == artifact

    def test_same_artifact_twice_is_one_blob(self, store, http_server, payload, tmp_path):
        name, data = payload
        source = parse_source(http_server.url(f"files/{name}"), allow_http=True)
        first = store.put(source)
        second = store.put(source)
        local = tmp_path / "elsewhere" / "renamed-1.0.tar.gz"
        local.parent.mkdir()
        local.write_bytes(data)
        third = store.put(parse_source(str(local)))  # same bytes from another source and name
        assert first == second == third
        assert blob_files(store) == [f"blobs/{first.sha256}/{name}"]

    @pytest.mark.parametrize("form", ["plain", "prefixed-upper"])
    def test_known_expected_hash_skips_the_request(self, store, http_server, payload, form):
        name, data = payload
        sha = hashlib.sha256(data).hexdigest()
        url = http_server.url(f"files/{name}")
        before = http_server.count(f"files/{name}")
        stored = store.put(parse_source(url, allow_http=True), expected_sha256=sha)
        assert http_server.count(f"files/{name}") == before + 1
        expected = sha if form == "plain" else f"SHA256:{sha.upper()}"
        again = store.put(parse_source(url, allow_http=True), expected_sha256=expected)
        assert again == stored
        assert http_server.count(f"files/{name}") == before + 1  # never downloaded twice
        # the hash is the identity, not the URL: even a dead link answers from the store
        dead = http_server.url("files/gone-1.0.tar.gz")
        assert store.put(parse_source(dead, allow_http=True), expected_sha256=sha) == stored
        assert http_server.count("files/gone-1.0.tar.gz") == 0

    def test_expected_hash_mismatch_stores_nothing(self, store, http_server, payload):
        name, data = payload
        wrong = "0" * 64
        with pytest.raises(ChecksumMismatchError) as info:
            store.put(parse_source(http_server.url(f"files/{name}"), allow_http=True), expected_sha256=wrong)
        actual = hashlib.sha256(data).hexdigest()
        assert (info.value.expected, info.value.actual) == (wrong, actual)
        assert wrong in str(info.value) and actual in str(info.value)
        assert "Nothing was stored" in str(info.value)
        assert blob_files(store) == []
        assert store.lookup(actual) is None

    @pytest.mark.parametrize("bad", ["abc", "sha256:" + "g" * 64, "0" * 63, "md5:" + "0" * 64])
    def test_malformed_expected_hash_refused_before_any_request(self, store, http_server, payload, bad):
        name, _ = payload
        before = http_server.count(f"files/{name}")
        with pytest.raises(ValidationError, match="expected_sha256"):
            store.put(parse_source(http_server.url(f"files/{name}"), allow_http=True), expected_sha256=bad)
        assert http_server.count(f"files/{name}") == before

    def test_normalize_expected(self):
        sha = hashlib.sha256(b"x").hexdigest()
        assert normalize_expected(None) is None
        assert normalize_expected(f" sha256:{sha.upper()} ") == sha

    def test_redirect_stored_under_the_source_file_name(self, store, http_server, payload):
        name, data = payload
        artifact = store.put(parse_source(http_server.url(f"redirect/{name}"), allow_http=True))
        assert artifact.filename == name
        assert artifact.sha256 == hashlib.sha256(data).hexdigest()

    @pytest.mark.parametrize(
        ("route", "update", "message"),
        [
            ("files/missing-1.0.tar.gz", {}, "HTTP 404"),
            ("to-ftp/x-1.0.tar.gz", {}, "refused scheme 'ftp'"),
            ("endless/x-1.0.tar.gz", {"max_download_bytes": MiB}, "byte limit"),
            ("drip/x-1.0.tar.gz", {"download_deadline": 1.0, "read_timeout": 0.9}, "took longer than"),
            ("short/x-1.0.tar.gz", {}, "4096"),
        ],
    )
    def test_failed_download_stores_nothing(self, store, http_server, route, update, message):
        store.settings = store.settings.model_copy(update=update)
        with pytest.raises(DownloadError, match=message):
            store.put(parse_source(http_server.url(route), allow_http=True))
        assert blob_files(store) == []

    def test_progress_is_passed_on(self, store, http_server, payload):
        name, data = payload
        seen: list[int] = []
        store.put(
            parse_source(http_server.url(f"files/{name}"), allow_http=True),
            progress=lambda done, total: seen.append(done),
        )
        assert seen[-1] == len(data) and seen == sorted(seen)

    @pytest.mark.usefixtures("trust_test_ca")
    def test_https_with_upper_case_scheme(self, store, https_server, payload):
        name, data = payload
        (https_server.root / name).write_bytes(data)
        url = "HTTPS" + https_server.url(f"files/{name}").removeprefix("https")
        artifact = store.put(parse_source(url))
        assert artifact.sha256 == hashlib.sha256(data).hexdigest()
        assert artifact.filename == name


class TestPutLocal:
    def test_archive_is_copied_in(self, store, fixture_packages):
        wheel = fixture_packages.my_model_wheel
        before = wheel.read_bytes()
        artifact = store.put(parse_source(str(wheel)))
        assert artifact.sha256 == sha256_of(wheel)
        assert artifact.path == store.root / "blobs" / artifact.sha256 / wheel.name
        assert artifact.path.read_bytes() == before
        assert not artifact.path.samefile(wheel)  # a copy, not a link to the user's file
        assert wheel.read_bytes() == before
        assert blob_files(store) == [f"blobs/{artifact.sha256}/{wheel.name}"]

    def test_file_url(self, store, fixture_packages):
        sdist = fixture_packages.my_model_sdist
        artifact = store.put(parse_source(sdist.as_uri()))
        assert artifact.sha256 == sha256_of(sdist)
        assert artifact.filename == sdist.name

    def test_local_mismatch_stores_nothing(self, store, fixture_packages):
        sdist = fixture_packages.my_model_sdist
        with pytest.raises(ChecksumMismatchError, match=sha256_of(sdist)):
            store.put(parse_source(str(sdist)), expected_sha256="f" * 64)
        assert blob_files(store) == []

    def test_project_directory_built_to_an_sdist(self, store, fixture_packages):
        project = fixture_packages.my_model_project
        artifact = store.put(parse_source(str(project)))
        assert artifact.filename == "my_model-0.1.0.tar.gz"
        # hatchling sdists are reproducible: the same bytes as the fixture's own `uv build --sdist`
        assert artifact.sha256 == sha256_of(fixture_packages.my_model_sdist)
        assert blob_files(store) == [f"blobs/{artifact.sha256}/my_model-0.1.0.tar.gz"]

    def test_broken_project_directory_reports_the_build_error(self, store, tmp_path):
        project = tmp_path / "broken"
        project.mkdir()
        (project / "pyproject.toml").write_text('[project\nname = "broken"\n')
        with pytest.raises(InstallError, match="uv build --sdist") as info:
            store.put(parse_source(str(project)))
        assert "pyproject.toml" in info.value.detail  # uv's own explanation
        assert blob_files(store) == []


def _put_in_child(root, settings, uv_bin, source, barrier, results) -> None:
    store = ArtifactStore(root, settings, uv_bin)
    barrier.wait(timeout=60)
    try:
        artifact = store.put(source)
        results.put((artifact.sha256, str(artifact.path)))
    except BaseException as exc:  # report instead of dying silently
        results.put(("error", repr(exc)))


def test_concurrent_put_of_one_artifact(store, http_server, payload):
    name, data = payload
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    source = parse_source(http_server.url(f"files/{name}"), allow_http=True)
    args = (store.root, store.settings, store.uv_bin, source, barrier, results)
    children = [ctx.Process(target=_put_in_child, args=args) for _ in range(3)]
    for child in children:
        child.start()
    answers = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=30)
    sha = hashlib.sha256(data).hexdigest()
    assert set(answers) == {(sha, str(store.root / "blobs" / sha / name))}, answers
    assert blob_files(store) == [f"blobs/{sha}/{name}"]
