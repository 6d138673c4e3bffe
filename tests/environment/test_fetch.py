"""download(): streaming with a hash, redirects re-checked, and every limit enforced, against real servers."""

from __future__ import annotations

import hashlib

import pytest
from environment_helpers import MiB, files_under

from lume_services.environment.fetch import MAX_REDIRECTS, download
from lume_services.errors import DownloadError


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "tmp"


class TestDownload:
    def test_hash_is_over_the_served_bytes(self, http_server, payload, dest, settings):
        name, data = payload
        got = download(http_server.url(f"files/{name}"), dest, settings)
        assert got.sha256 == hashlib.sha256(data).hexdigest()
        assert got.size == len(data)
        assert got.path.read_bytes() == data
        assert got.path.parent == dest and got.path.name.startswith(".part-")
        assert got.path.stat().st_mode & 0o777 == 0o600  # private until committed

    def test_progress_reports_increasing_byte_counts(self, http_server, payload, dest, settings):
        name, data = payload
        calls: list[tuple[int, int | None]] = []
        download(http_server.url(f"files/{name}"), dest, settings, progress=lambda d, t: calls.append((d, t)))
        assert len(calls) > 1
        done = [d for d, _ in calls]
        assert done == sorted(set(done))  # strictly increasing
        assert done[-1] == len(data)
        assert {t for _, t in calls} == {len(data)}

    def test_redirect_is_followed(self, http_server, payload, dest, settings):
        name, data = payload
        before = http_server.count(f"files/{name}")
        got = download(http_server.url(f"redirect/{name}"), dest, settings)
        assert got.sha256 == hashlib.sha256(data).hexdigest()
        assert http_server.count(f"files/{name}") == before + 1

    def test_up_to_five_redirects(self, http_server, payload, dest, settings):
        name, data = payload
        # /chain/4/ redirects 4 times to /chain/0/, which redirects to /files/: 5 redirects
        got = download(http_server.url(f"chain/{MAX_REDIRECTS - 1}/{name}"), dest, settings)
        assert got.size == len(data)

    def test_more_than_five_redirects_refused(self, http_server, payload, dest, settings):
        name, _ = payload
        before = http_server.count(f"files/{name}")
        with pytest.raises(DownloadError, match=f"more than {MAX_REDIRECTS} redirects"):
            download(http_server.url(f"chain/{MAX_REDIRECTS}/{name}"), dest, settings)
        assert http_server.count(f"chain/0/{name}") >= 1  # the sixth redirect was answered...
        assert http_server.count(f"files/{name}") == before  # ...and not followed
        assert files_under(dest) == []

    def test_redirect_to_ftp_refused(self, http_server, payload, dest, settings):
        name, _ = payload
        with pytest.raises(DownloadError, match="refused scheme 'ftp'") as info:
            download(http_server.url(f"to-ftp/{name}"), dest, settings)
        assert info.value.url == f"ftp://127.0.0.1/{name}"
        assert files_under(dest) == []

    def test_http_refused_unless_allowed(self, http_server, payload, dest, settings):
        name, _ = payload
        before = http_server.count(f"files/{name}")
        strict = settings.model_copy(update={"allow_http": False})
        with pytest.raises(DownloadError, match="refused scheme 'http'"):
            download(http_server.url(f"files/{name}"), dest, strict)
        assert http_server.count(f"files/{name}") == before  # refused before any request
        assert files_under(dest) == []

    def test_404(self, http_server, dest, settings):
        with pytest.raises(DownloadError, match="HTTP 404") as info:
            download(http_server.url("files/missing-1.0.tar.gz"), dest, settings)
        assert "missing-1.0.tar.gz" in str(info.value)
        assert "Nothing was stored" in str(info.value)
        assert files_under(dest) == []

    def test_connection_refused(self, dest, settings):
        import socket

        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(DownloadError, match="ConnectError"):
            download(f"http://127.0.0.1:{port}/x-1.0.tar.gz", dest, settings)


class TestLimits:
    def test_announced_size_over_the_cap_refused_before_writing(self, http_server, dest, settings):
        small = settings.model_copy(update={"max_download_bytes": MiB})
        with pytest.raises(DownloadError, match=f"over the {MiB}-byte limit"):
            download(http_server.url("huge/x-1.0.tar.gz"), dest, small)
        assert files_under(dest) == []

    def test_endless_body_cut_at_the_cap(self, http_server, dest, settings):
        small = settings.model_copy(update={"max_download_bytes": MiB})
        seen: list[int] = []
        with pytest.raises(DownloadError, match=f"exceeded the {MiB}-byte limit"):
            download(
                http_server.url("endless/x-1.0.tar.gz"), dest, small, progress=lambda d, t: seen.append(d)
            )
        assert seen and seen[-1] <= MiB and seen[0] > 0
        assert files_under(dest) == []

    def test_payload_of_exactly_the_cap_is_accepted(self, http_server, payload, dest, settings):
        name, data = payload
        exact = settings.model_copy(update={"max_download_bytes": len(data)})
        assert download(http_server.url(f"files/{name}"), dest, exact).size == len(data)
        one_less = settings.model_copy(update={"max_download_bytes": len(data) - 1})
        with pytest.raises(DownloadError, match="limit"):
            download(http_server.url(f"files/{name}"), dest, one_less)

    def test_dripping_server_stopped_by_the_deadline(self, http_server, dest, settings):
        # one byte every 0.05 s never trips the 0.9 s read timeout: only the overall deadline stops it
        slow = settings.model_copy(update={"download_deadline": 1.0, "read_timeout": 0.9})
        with pytest.raises(DownloadError, match="took longer than 1 s"):
            download(http_server.url("drip/x-1.0.tar.gz"), dest, slow)
        assert files_under(dest) == []

    def test_dripping_headers_stopped_by_the_deadline(self, http_server, dest, settings):
        # the deadline holds on every socket read, not only while the body streams
        slow = settings.model_copy(update={"download_deadline": 1.0, "read_timeout": 0.9})
        with pytest.raises(DownloadError, match="took longer than 1 s"):
            download(http_server.url("drip-headers/x-1.0.tar.gz"), dest, slow)
        assert files_under(dest) == []

    def test_stalled_server_stopped_by_the_read_timeout(self, http_server, dest, settings):
        slow = settings.model_copy(update={"download_deadline": 30.0, "read_timeout": 0.3})
        with pytest.raises(DownloadError, match="stopped sending"):
            download(http_server.url("stall/x-1.0.tar.gz"), dest, slow)
        assert files_under(dest) == []

    def test_short_body_refused(self, http_server, dest, settings):
        with pytest.raises(DownloadError) as info:
            download(http_server.url("short/x-1.0.tar.gz"), dest, settings)
        assert "short/x-1.0.tar.gz" in str(info.value)
        assert "4096" in str(info.value)  # httpx notices the missing bytes (or our own length check)
        assert files_under(dest) == []


@pytest.mark.usefixtures("trust_test_ca")
class TestHTTPS:
    def test_download_over_tls(self, https_server, payload, dest, settings):
        name, data = payload
        (https_server.root / name).write_bytes(data)
        strict = settings.model_copy(update={"allow_http": False})
        got = download(https_server.url(f"files/{name}"), dest, strict)
        assert got.sha256 == hashlib.sha256(data).hexdigest()

    def test_upper_case_scheme(self, https_server, payload, dest, settings):
        name, data = payload
        (https_server.root / name).write_bytes(data)
        url = "HTTPS" + https_server.url(f"files/{name}").removeprefix("https")
        strict = settings.model_copy(update={"allow_http": False})
        assert download(url, dest, strict).size == len(data)

    def test_redirect_downgrade_to_http_refused(self, https_server, http_server, payload, dest, settings):
        name, _ = payload
        before = http_server.count(f"files/{name}")
        strict = settings.model_copy(update={"allow_http": False})
        with pytest.raises(DownloadError, match="from https to http scheme"):
            download(https_server.url(f"to-http/{name}"), dest, strict)
        assert http_server.count(f"files/{name}") == before  # the http hop was never requested
        assert files_under(dest) == []

    def test_https_never_downgrades_even_when_http_is_allowed(
        self, https_server, http_server, payload, dest, settings
    ):
        # allow_http admits http sources; it never lets an https download continue over http
        name, _ = payload
        before = http_server.count(f"files/{name}")
        with pytest.raises(DownloadError, match="a downgrade"):
            download(https_server.url(f"to-http/{name}"), dest, settings)
        assert http_server.count(f"files/{name}") == before


def test_untrusted_certificate_refused(https_server, payload, dest, settings, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    name, data = payload
    (https_server.root / name).write_bytes(data)
    with pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
        download(https_server.url(f"files/{name}"), dest, settings)
    assert files_under(dest) == []
