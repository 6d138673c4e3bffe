"""Fixtures for the environment tests: loopback HTTP(S) servers, real fixture packages, settings.

The HTTP server serves a directory of artifacts plus routes that misbehave on
purpose (redirect chains, a redirect to ftp://, a slow drip, an endless body,
a short body, headers that drip, ...) and counts every request, so tests can check that an
artifact is never downloaded twice. The fixture packages are real wheels and
sdists built once per session with ``uv build`` (tests/packages.py).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit

import packages
import pytest
from environment_helpers import NO_SUCH_PACKAGE, MiB
from uv import find_uv_bin

from lume_services.environment.envs import EnvironmentManager
from lume_services.environment.settings import EnvironmentSettings
from lume_services.environment.store import ArtifactStore

DRIP_INTERVAL = 0.05  # seconds between the bytes of /drip/ (well under the read timeout tests use)
DRIP_FOR = 10.0  # then the response ends short: a missed deadline fails a test instead of hanging it


# -- the loopback server -------------------------------------------------------------


class ServedFiles:
    """What a loopback server serves and how often each path was requested."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.base = ""  # e.g. http://127.0.0.1:PORT
        self.http_base = ""  # the plain-http server's base (target of /to-http/)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def count(self, path: str) -> int:
        with self.lock:
            return self.counts["/" + path.lstrip("/")]


def _handler(state: ServedFiles) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, bodies without a length end at close.
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = unquote(urlsplit(self.path).path)
            with state.lock:
                state.counts[path] += 1
            route, _, rest = path.lstrip("/").partition("/")
            method = getattr(self, "route_" + route.replace("-", "_"), None)
            try:
                if method is None:
                    self.send_error(404)
                else:
                    method(rest)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # the client gave up, as it should

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _start(self, length: Optional[int]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()

        def route_files(self, name: str) -> None:
            target = state.root / name
            if "/" in name or not target.is_file():
                self.send_error(404)
                return
            data = target.read_bytes()
            self._start(len(data))
            self.wfile.write(data)

        def route_redirect(self, name: str) -> None:
            self._redirect(f"/files/{name}")

        def route_chain(self, rest: str) -> None:
            """/chain/<n>/<name>: n more redirects, then one to /files/<name> (n + 1 in all)."""
            hops, _, name = rest.partition("/")
            left = int(hops)
            self._redirect(f"/chain/{left - 1}/{name}" if left > 0 else f"/files/{name}")

        def route_to_ftp(self, name: str) -> None:
            self._redirect(f"ftp://127.0.0.1/{name}")

        def route_to_http(self, name: str) -> None:
            self._redirect(f"{state.http_base}/files/{name}")

        def route_drip(self, name: str) -> None:
            """Headers and a few bytes, then one byte every DRIP_INTERVAL: only a deadline stops it."""
            self._start(MiB)
            self.wfile.write(b"\0" * 16)
            self.wfile.flush()
            for _ in range(int(DRIP_FOR / DRIP_INTERVAL)):
                if state.stop.wait(DRIP_INTERVAL):
                    return
                self.wfile.write(b"\0")
                self.wfile.flush()

        def route_drip_headers(self, name: str) -> None:
            """A status line, then a header one byte every DRIP_INTERVAL: the body is never reached."""
            self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
            self.wfile.flush()
            for _ in range(int(DRIP_FOR / DRIP_INTERVAL)):
                if state.stop.wait(DRIP_INTERVAL):
                    return
                self.wfile.write(b"a")
                self.wfile.flush()

        def route_stall(self, name: str) -> None:
            """Headers and a few bytes, then silence."""
            self._start(MiB)
            self.wfile.write(b"\0" * 16)
            self.wfile.flush()
            state.stop.wait(DRIP_FOR)

        def route_endless(self, name: str) -> None:
            """No Content-Length and a body that never ends (up to 1 GiB)."""
            self._start(None)
            chunk = b"\0" * 65536
            for _ in range(16384):
                if state.stop.is_set():
                    return
                self.wfile.write(chunk)

        def route_huge(self, name: str) -> None:
            """Announces 10 GiB."""
            self._start(10 * 1024 * MiB)
            self.wfile.write(b"\0" * 1024)

        def route_short(self, name: str) -> None:
            """Announces 4096 bytes, sends 100 and closes."""
            self._start(4096)
            self.wfile.write(b"\1" * 100)
            self.wfile.flush()

    return Handler


@contextmanager
def _serve(state: ServedFiles, tls: Optional[ssl.SSLContext] = None) -> Iterator[ServedFiles]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    state.base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedFiles]:
    """A plain-http loopback server (sources need ``allow_http=True``)."""
    state = ServedFiles(tmp_path_factory.mktemp("served-http"))
    with _serve(state) as served:
        served.http_base = served.base
        yield served


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (cryptography comes with prefect)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lume-services test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    paths = Certificate(folder / "cert.pem", folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture(scope="session")
def https_server(
    tmp_path_factory: pytest.TempPathFactory, certificate: Certificate, http_server: ServedFiles
) -> Iterator[ServedFiles]:
    """An https loopback server with a self-signed certificate (trust it with ``trust_test_ca``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert, certificate.key)
    state = ServedFiles(tmp_path_factory.mktemp("served-https"))
    state.http_base = http_server.base
    with _serve(state, context) as served:
        yield served


@pytest.fixture
def trust_test_ca(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make httpx trust the test certificate (httpx honours SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))


@pytest.fixture(scope="session")
def payload(http_server: ServedFiles) -> tuple[str, bytes]:
    """1.5 MiB of random bytes served as /files/payload-1.0.tar.gz: (name, bytes)."""
    data = os.urandom(3 * MiB // 2)
    name = "payload-1.0.tar.gz"
    (http_server.root / name).write_bytes(data)
    return name, data


# -- settings, store, environments ---------------------------------------------------


@pytest.fixture(scope="session")
def uv_bin() -> str:
    return find_uv_bin()


@pytest.fixture(scope="session")
def uv_cache(uv_bin: str) -> Path:
    """One uv cache for the whole session: uv's own (warm across runs, shared with `uv build`)."""
    if os.environ.get("UV_CACHE_DIR"):
        return Path(os.environ["UV_CACHE_DIR"])
    out = subprocess.run([uv_bin, "cache", "dir"], capture_output=True, text=True, timeout=30, check=True)
    return Path(out.stdout.strip())


@pytest.fixture(scope="session")
def session_settings(uv_cache: Path) -> EnvironmentSettings:
    return EnvironmentSettings(
        allow_http=True,
        uv_cache_dir=uv_cache,
        connect_timeout=5,
        read_timeout=5,
        download_deadline=30,
        install_timeout=300,
        describe_timeout=120,
    )


@pytest.fixture
def settings(session_settings: EnvironmentSettings) -> EnvironmentSettings:
    return session_settings.model_copy()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "lume-home"
    path.mkdir()
    return path


@pytest.fixture
def store(home: Path, settings: EnvironmentSettings, uv_bin: str) -> ArtifactStore:
    return ArtifactStore(home / "store", settings, uv_bin)


@pytest.fixture
def envs(home: Path, settings: EnvironmentSettings, uv_bin: str) -> EnvironmentManager:
    return EnvironmentManager(home / "envs", settings, uv_bin, home)


# -- fixture packages, built once per session -----------------------------------------


@dataclass(frozen=True)
class FixturePackages:
    """Real artifacts built with ``uv build``; dists are dash-named, import packages underscored."""

    my_model_project: Path  # hatchling project: dist my-model, package my_model, _image.py f-string
    my_model_sdist: Path
    my_model_wheel: Path
    setuptools_sdist: Path  # setup-model: Container Image Project-URL (tagless) and a plain _image.py
    legacy_sdist: Path  # legacy-model: setup.py only, _image.py with a plain string
    no_flow_wheel: Path  # only a model entry point
    two_flows_wheel: Path
    bad_dependency_wheel: Path  # depends on a package that does not exist
    not_a_flow_wheel: Path  # flow entry point is a plain function; no image


MY_MODEL_IMAGE = 'IMAGE = f"ghcr.io/slaclab/my-model:v{__version__}"\n'


# (attribute, kind, write_project arguments); dependencies default to none so installs are quick
PACKAGES: list[tuple[str, str, dict]] = [
    ("setuptools_sdist", "sdist", dict(
        dist="setup-model", package="setup_model", backend="setuptools",
        container_url="ghcr.io/slaclab/setup-model", image_module='IMAGE = "docker.io/not/this:1"\n',
    )),
    ("legacy_sdist", "sdist", dict(
        dist="legacy-model", package="legacy_model", backend="legacy",
        image_module='IMAGE = "docker.io/slaclab/legacy-model:1.0"\n',
    )),
    ("no_flow_wheel", "wheel", dict(
        dist="no-flow-model", package="no_flow_model",
        entry_points={"no_flow_model.model": "no_flow_model.model:Model"},
    )),
    ("two_flows_wheel", "wheel", dict(
        dist="two-flows", package="two_flows",
        entry_points={"two_flows.flow": "two_flows.flow:flow", "other.flow": "two_flows.flow:flow"},
    )),
    ("bad_dependency_wheel", "wheel", dict(
        dist="bad-dependency", package="bad_dependency", dependencies=(f"{NO_SUCH_PACKAGE}==1.0",),
    )),
    ("not_a_flow_wheel", "wheel", dict(
        dist="not-a-flow", package="not_a_flow", flow_source="def flow(x: int = 1) -> int:\n    return x\n",
    )),
]  # fmt: skip


@pytest.fixture(scope="session")
def fixture_packages(tmp_path_factory: pytest.TempPathFactory) -> FixturePackages:
    """All fixture packages, built in parallel once per session."""
    src = tmp_path_factory.mktemp("package-sources")
    out = tmp_path_factory.mktemp("package-builds")
    my_model = packages.write_project(
        src, dist="my-model", package="my_model", flow_name="my-model-flow", dependencies=(),
        image_module=MY_MODEL_IMAGE,
    )  # fmt: skip
    jobs = {"my_model_sdist": (my_model, "sdist"), "my_model_wheel": (my_model, "wheel")}
    for attribute, kind, kwargs in PACKAGES:
        jobs[attribute] = (packages.write_project(src, **{"dependencies": (), **kwargs}), kind)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            key: pool.submit(packages.build, project, out, kind) for key, (project, kind) in jobs.items()
        }
        built = {key: future.result() for key, future in futures.items()}
    return FixturePackages(my_model_project=my_model, **built)
