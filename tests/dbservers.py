"""Throwaway MariaDB and PostgreSQL servers for the test suite (stdlib only).

    srv = start_postgres(tmp_path)          # or start_mariadb(tmp_path)
    try:
        engine = sqlalchemy.create_engine(srv.url)
        scratch_url = srv.create_database("scratch")
    finally:
        srv.stop()

Each server gets a fresh directory under ``base_dir``, listens on 127.0.0.1
only (a free port) plus a unix socket used for superuser setup, and runs with
durability switched off for speed.  The application user ``lume`` has a random
password full of URL-hostile characters, so ``url`` must be escaped correctly.
``find_mariadb()`` / ``find_postgres()`` return None when a server is not
installed (see scripts/install_test_servers.sh); startup failures raise
``ServerStartError`` with the tail of the server log.

Smoke test: ``python tests/dbservers.py``.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

START_TIMEOUT = 60.0  # seconds until a server must accept connections
STOP_TIMEOUT = 30.0  # seconds to wait after each stop signal before escalating
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin
SCHEMES = {"mariadb": "mysql+pymysql", "postgresql": "postgresql+psycopg"}
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])


class ServerStartError(RuntimeError):
    """A server could not be initialised/started, or an admin SQL command failed."""


class MariaDBBinaries(NamedTuple):
    install_db: str
    server: str
    client: str


@dataclasses.dataclass(eq=False)
class Server:
    """A running throwaway server; ``url`` points at database ``lume_test``."""

    name: str  # "mariadb" or "postgresql"
    url: str = dataclasses.field(repr=False)  # contains the password
    host: str
    port: int
    user: str
    password: str = dataclasses.field(repr=False)
    database: str
    _admin: list = dataclasses.field(repr=False)  # superuser client argv (unix socket)
    _create_sql: str = dataclasses.field(repr=False)  # CREATE DATABASE template
    _stop_signals: tuple = dataclasses.field(repr=False)  # graceful first, then harsher
    _dirs: list = dataclasses.field(repr=False)  # removed by stop()
    _run_kw: dict = dataclasses.field(default_factory=dict, repr=False)  # user=/cwd= for server
    _proc: subprocess.Popen | None = dataclasses.field(default=None, repr=False)
    _launch: tuple = dataclasses.field(default=(), repr=False)  # (argv, ready, log) to start it again

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL for ``database`` on this server, as user lume."""
        pw = urllib.parse.quote(self.password, safe="")
        return f"{SCHEMES[self.name]}://{self.user}:{pw}@{self.host}:{self.port}/{database}"

    def masked(self, url: str | None = None) -> str:
        """``url`` (default: self.url) with the password replaced by ***."""
        return (url or self.url).replace(urllib.parse.quote(self.password, safe=""), "***")

    def sql(self, statements: str) -> str:
        """Run SQL as the superuser through the client binary; return stdout."""
        return _run(self._admin, f"{self.name} client", input=statements)

    def create_database(self, name: str) -> str:
        """Create an empty database usable by ``lume`` and return its URL."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
            raise ValueError(f"unsafe database name: {name!r}")
        self.sql(self._create_sql.format(name=name, user=self.user))
        return self.url_for(name)

    def crash(self) -> None:
        """SIGKILL the server (its data stays): a crash, as clients see it."""
        if self._proc is not None and self._proc.poll() is None:
            _kill_tree(self._proc)

    def start_again(self) -> None:
        """Start the crashed server on its data and port again; returns when it accepts connections."""
        argv, ready, log = self._launch
        with open(log, "ab") as logf:
            self._proc = subprocess.Popen(
                [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True, env=_clean_env(), **self._run_kw,
            )  # fmt: skip
        _wait_ready(self._proc, ready, log, self.name)

    def stop(self) -> None:
        """Stop the server and delete its directory; idempotent, leaves no processes.

        Each of ``_stop_signals`` gets STOP_TIMEOUT seconds; then the whole
        process tree is SIGKILLed as a last resort.
        """
        proc = self._proc
        for sig in self._stop_signals if proc else ():
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        if proc and proc.poll() is None:
            _kill_tree(proc)
        for d in self._dirs:
            shutil.rmtree(d, ignore_errors=True)
        atexit.unregister(self.stop)


# --------------------------------------------------------------------- helpers
def _free_port() -> int:
    """A currently free loopback TCP port (small race until the server binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _password() -> str:
    # Deliberately URL-hostile; no quote or backslash, so it fits in SQL literals.
    return "L@:" + secrets.token_urlsafe(12) + "/%#?&+="


def _clean_env() -> dict:
    """os.environ without PG*/MYSQL* variables that could redirect the clients."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL"))}
    return {**env, "LC_ALL": "C"}


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run(argv: list, what: str, input: str | None = None, **kw) -> str:
    """Run a one-shot command; raise ServerStartError with its output on failure."""
    kw.setdefault("env", _clean_env())
    argv = [str(a) for a in argv]
    res = subprocess.run(argv, check=False, input=input, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise ServerStartError(f"{what} failed (exit {res.returncode}):\n{res.stdout}{res.stderr}")
    return res.stdout


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the server and all its descendants (found via /proc), then reap it.

    killpg() is not enough: PostgreSQL backends call setsid() themselves.
    """
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # the field after "(comm)" is the state, then the ppid
            parents[int(stat.parent.name)] = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    pids = [proc.pid]
    for pid in pids:  # breadth-first; the list grows while we walk it
        pids += [child for child, ppid in parents.items() if ppid == pid]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _traversable(path: Path, user: pwd.struct_passwd) -> bool:
    """Can ``user`` reach ``path`` (search bit on it and every ancestor)?"""
    for p in [path, *path.parents]:
        st = p.stat()
        bit = 0o100 if st.st_uid == user.pw_uid else 0o010 if st.st_gid == user.pw_gid else 0o001
        if not st.st_mode & bit:
            return False
    return True


def _workdir(base_dir: Path, name: str, owner: pwd.struct_passwd | None) -> tuple:
    """Create a fresh server directory; return (directory, log path).

    Normally ``base_dir/<name>-XXXXXXXX``.  Falls back to the system temp dir if
    that path is too long for a unix socket, or ``owner`` cannot traverse
    base_dir (e.g. pytest's 0700 /tmp/pytest-of-root).  The log stays in base_dir.
    """
    base_dir = Path(base_dir).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    unusable = len(str(base_dir)) > SOCKET_PATH_MAX - 40 or (owner and not _traversable(base_dir, owner))
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=None if unusable else base_dir))
    if owner:
        os.chown(work, owner.pw_uid, owner.pw_gid)
    return work, base_dir / f"{work.name}.log"


def _wait_ready(proc: subprocess.Popen, ready: Callable[[], bool], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            raise ServerStartError(
                f"{what} exited with code {proc.returncode} during startup; log {log}:\n{_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise ServerStartError(f"{what} not ready after {START_TIMEOUT:.0f}s; log {log}:\n{_tail(log)}")
        time.sleep(0.05)


def _new_server(name: str, port: int, work: Path, **private) -> Server:
    srv = Server(name, "", "127.0.0.1", port, "lume", _password(), "lume_test", _dirs=[work], **private)
    srv.url = srv.url_for(srv.database)
    return srv


def _boot(srv: Server, log: Path, init: list, argv: list, ready: Callable[[], bool], setup: str) -> Server:
    """Initialise the data dir, launch the server, wait until ready, run setup SQL.

    On any failure the server is stopped and its directory removed before re-raising.
    """
    try:
        _run(init, f"{srv.name} init", **srv._run_kw)
        with open(log, "ab") as logf:  # the child inherits the fd; we may close ours
            srv._proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_clean_env(),
                **srv._run_kw,
            )
        _wait_ready(srv._proc, ready, log, srv.name)
        srv._launch = (argv, ready, log)
        srv.sql(setup)
    except BaseException:
        srv.stop()
        raise
    atexit.register(srv.stop)  # safety net if the caller forgets
    return srv


# --------------------------------------------------------------------- MariaDB
def find_mariadb() -> MariaDBBinaries | None:
    """Paths of mariadb-install-db, mariadbd and the client, or None."""

    def first(*names):
        return next((p for n in names if (p := shutil.which(n, path=_SBIN_PATH))), None)

    bins = MariaDBBinaries(
        first("mariadb-install-db", "mysql_install_db"),
        first("mariadbd", "mysqld"),
        first("mariadb", "mysql"),
    )
    return bins if all(bins) else None


def start_mariadb(base_dir: Path) -> Server:
    bins = find_mariadb()
    if bins is None:
        raise ServerStartError("MariaDB is not installed; run scripts/install_test_servers.sh")
    work, log = _workdir(base_dir, "mariadb", None)
    data, sock, port = work / "data", work / "mysql.sock", _free_port()
    common = [
        f"--datadir={data}",
        *(["--user=root"] if os.geteuid() == 0 else []),
        # small and fast; durability is irrelevant for a throwaway server
        "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=16M",
        "--innodb-flush-log-at-trx-commit=2",
        "--innodb-doublewrite=0",
        "--innodb-use-native-aio=0",
        "--skip-log-bin",
        "--performance-schema=OFF",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--skip-name-resolve",
    ]
    srv = _new_server(
        "mariadb",
        port,
        work,
        _stop_signals=(signal.SIGTERM,),
        _admin=[
            bins.client,
            "--no-defaults",
            "--protocol=socket",
            f"--socket={sock}",
            "--user=root",
            "--batch",
            "--skip-column-names",
        ],
        _create_sql="CREATE DATABASE `{name}` CHARACTER SET utf8mb4;",
    )
    accounts = ["'lume'@'127.0.0.1'", "'lume'@'localhost'"]  # TCP and socket logins
    setup = "".join(f"CREATE USER {a} IDENTIFIED BY '{srv.password}';" for a in accounts)
    setup += f"GRANT ALL ON *.* TO {', '.join(accounts)} WITH GRANT OPTION; CREATE DATABASE lume_test;"
    return _boot(
        srv,
        log,
        init=[
            bins.install_db,
            "--no-defaults",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *common,
        ],
        argv=[
            bins.server,
            "--no-defaults",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={work / 'mariadbd.pid'}",
            *common,
        ],
        ready=lambda: _unix_accepts(sock),
        setup=setup,
    )


def _unix_accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        return s.connect_ex(str(path)) == 0


# ------------------------------------------------------------------ PostgreSQL
def find_postgres() -> Path | None:
    """The bin dir of the newest PostgreSQL (Debian layout, else PATH), or None."""
    dirs = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()]
    if dirs:
        return max(dirs, key=lambda p: tuple(int(x) for x in re.findall(r"\d+", p.parent.name)))
    initdb = shutil.which("initdb", path=_SBIN_PATH)
    return Path(initdb).parent if initdb else None


def start_postgres(base_dir: Path, *, crash_safe: bool = False) -> Server:
    # crash_safe: commits acknowledged before a SIGKILL of the server survive it (synchronous_commit)
    bindir = find_postgres()
    if bindir is None:
        raise ServerStartError("PostgreSQL is not installed; run scripts/install_test_servers.sh")
    # PostgreSQL refuses to run as root: then initdb/postgres run as user "postgres".
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    work, log = _workdir(base_dir, "postgresql", owner)
    data, hba, port = work / "data", work / "pg_hba.conf", _free_port()
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    run_kw = {"cwd": work}
    if owner:
        os.chown(hba, owner.pw_uid, owner.pw_gid)
        run_kw.update(user=owner.pw_uid, group=owner.pw_gid, extra_groups=[])
    srv = _new_server(
        "postgresql",
        port,
        work,
        _run_kw=run_kw,
        # SIGINT = fast shutdown (SIGTERM waits for clients); SIGQUIT = immediate
        _stop_signals=(signal.SIGINT, signal.SIGQUIT),
        _admin=[
            bindir / "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            work,
            "-p",
            port,
            "-U",
            "postgres",
            "-d",
            "postgres",
        ],
        _create_sql='CREATE DATABASE "{name}" OWNER {user};',
    )
    settings = ["fsync=off", "synchronous_commit=off", "full_page_writes=off", f"hba_file={hba}"]
    if crash_safe:  # a process crash keeps the OS cache: fsync may stay off
        settings.remove("synchronous_commit=off")
    return _boot(
        srv,
        log,
        init=[
            bindir / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--auth=trust",
            "--no-sync",
        ],
        argv=[
            bindir / "postgres",
            "-D",
            data,
            "-k",
            work,
            "-h",
            "127.0.0.1",
            "-p",
            port,
            *[arg for s in settings for arg in ("-c", s)],
        ],
        ready=lambda: _pg_ready(data),
        setup=f"CREATE ROLE lume LOGIN CREATEDB PASSWORD '{srv.password}';"
        "CREATE DATABASE lume_test OWNER lume;",
    )


def _pg_ready(data: Path) -> bool:
    """postmaster.pid's 8th line says "ready" once connections are accepted."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready"


# ------------------------------------------------------------------ smoke test
def _select_one_as_lume(srv: Server) -> str:
    """SELECT 1 over TCP as lume with the password (checks auth, not just the socket)."""
    if srv.name == "mariadb":
        env = {**_clean_env(), "MYSQL_PWD": srv.password}
        argv = [
            find_mariadb().client,
            "--no-defaults",
            "-h",
            srv.host,
            "-P",
            srv.port,
            "-u",
            srv.user,
            "--batch",
            "--skip-column-names",
            "-e",
            "SELECT 1",
            srv.database,
        ]
    else:
        env = {**_clean_env(), "PGPASSWORD": srv.password}
        argv = [
            find_postgres() / "psql",
            "-X",
            "-A",
            "-t",
            "-h",
            srv.host,
            "-p",
            srv.port,
            "-U",
            srv.user,
            "-d",
            srv.database,
            "-c",
            "SELECT 1",
        ]
    return _run(argv, "SELECT 1", env=env).strip()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="dbservers-") as tmp:
        for start in (start_mariadb, start_postgres):
            t0 = time.monotonic()
            srv = start(Path(tmp))
            print(f"{srv.name}: {srv.masked()} (started in {time.monotonic() - t0:.2f}s)")
            try:
                print(f"  SELECT 1 as lume over TCP -> {_select_one_as_lume(srv)}")
                print(f"  extra database: {srv.masked(srv.create_database('extra_db'))}")
            finally:
                t0 = time.monotonic()
                srv.stop()
                print(f"  stopped in {time.monotonic() - t0:.2f}s")
