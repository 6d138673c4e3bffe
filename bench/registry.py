"""Benchmark: the lume-services registry against MLflow's model registry, side by side.

Both systems run in this one process against the same database server: an
SQLite directory (one file each) and a throwaway MariaDB (tests/dbservers.py;
one database each), each system with its own default settings. MLflow is
used at its store level (``SqlAlchemyStore``, no HTTP server), where its
registry is fastest. The floor is plain SQLAlchemy Core
(a prepared ``insert()`` of the row and of its audit event / a primary-key
``select()``, no ORM, no validation, no explicit locking) on lume-services'
own tables in the same database; for the 5000-deployment listings, the same
SELECT as ``get_deployments`` / ``list_deployments`` with ``fetchall()`` (rows,
no records) through the same driver.

Operations (lume-services / MLflow):
  create model            store_model / create_registered_model with the five fields as tags
  store deployment        store_deployment / create_model_version
  get model by id         get_model / get_registered_model
  latest deployment       get_latest_deployment / get_model_version_by_alias (and get_latest_versions)
  set live                set_live / set_registered_model_alias
  page of 100 models      list_models_with_live(limit=100) / search_registered_models(max_results=100),
                          first page and a page in the middle, at 1,000 models and at --scale models
  5000 deployments        latest: get_latest_deployment / get_registered_model (its latest versions);
                          list all: get_deployments / search_model_versions; a page of 100 of them
  8 concurrent writers    processes adding deployments (versions) to one model: throughput, errors
  history                 get_live_deployment(at=T) and a page of 100 audit events (all, and one
                          model's), at 1,000 and at --scale live changes and events (no MLflow
                          equivalent: it keeps no history of aliases and no audit log)
Large registries are built with the bulk path (ours) and with Core inserts into
MLflow's own tables (theirs), so that building them does not dominate the run.

Numbers are medians of timed calls; the systems take turns in blocks so that
both see the same machine load. Ratios are computed within the same run.

    .venv/bin/python bench/registry.py --quick     # SQLite and MariaDB, 10,000-model scale; < 3 minutes
    .venv/bin/python bench/registry.py             # 100,000-model scale, more samples
    .venv/bin/python bench/registry.py --dialect sqlite --scale 20000
"""

from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # dbservers: the throwaway MariaDB of the test suite

from sqlalchemy import bindparam, create_engine, event, insert, select  # noqa: E402

from lume_services.services.models.db.db import ModelDB, ModelDBConfig  # noqa: E402
from lume_services.services.models.db.schema import AuditEvent, Deployment, LiveChange, Model  # noqa: E402
from lume_services.services.models.service import ModelDBService  # noqa: E402

SHA = "ab" * 32


@dataclass(frozen=True)
class Settings:
    ops: int  # timed calls per fast operation and system
    reads: int  # timed calls per slow read (pages, 5000-deployment reads)
    base: int  # models in the registry for the page test
    scale: int  # models for the scale test
    per_writer: int  # deployments each concurrent writer adds
    versions: int = 5000
    writers: int = 8


QUICK = Settings(ops=100, reads=40, base=1000, scale=10_000, per_writer=25)
FULL = Settings(ops=400, reads=40, base=1000, scale=100_000, per_writer=100)


@dataclass
class Result:
    dialect: str
    operation: str
    mlflow_call: str
    ours: Optional[float] = None  # median seconds
    mlflow: Optional[float] = None
    floor: Optional[float] = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- timing -------------------------------------------------------------------------


def medians(
    calls: dict[str, Callable[[], Any]], n: int, rounds: int = 5, budget: float = 4.0
) -> dict[str, float]:
    """Median seconds per call of each callable; they take turns in ``rounds`` blocks.

    Each callable runs ``n`` times, or fewer (at least ``rounds``) when its
    calls would take more than ``budget`` seconds in all: slow calls need
    fewer samples for a stable median.
    """
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()  # warm
    per_round = max(1, n // rounds)
    for _ in range(rounds):
        for name, call in calls.items():
            spent = 0.0
            for _ in range(per_round):
                started = time.perf_counter()
                call()
                elapsed = time.perf_counter() - started
                samples[name].append(elapsed)
                spent += elapsed
                if spent > budget / rounds:
                    break
    return {name: statistics.median(values) for name, values in samples.items()}


def counter() -> Callable[[], int]:
    numbers = itertools.count(1)
    return lambda: next(numbers)


# -- the systems ----------------------------------------------------------------------


def model_fields(i: Any, prefix: str = "bench") -> dict[str, str]:
    n = zlib.crc32(str(i).encode())
    return dict(
        author=f"author {n % 97}",
        laboratory="slac",
        facility=f"facility {n % 20}",
        beampath=f"beampath {n % 40}",
        description=f"{prefix} model {i}",
    )


def deployment_fields(model_id: int, version: str, *, is_live: bool = False) -> dict[str, Any]:
    return dict(
        model_id=model_id,
        version=version,
        source=f"https://example.org/releases/model-{version}.tar.gz",
        sha256=SHA,
        package_import_name="bench_model",
        image=f"registry.example.org/slac/model:{version}",
        is_live=is_live,
    )


def lume_service(url: str) -> ModelDBService:
    service = ModelDBService(ModelDB(ModelDBConfig(url=url, auto_migrate=True)))
    service.get_projects()  # migrates, and does the one-time schema check
    return service


def mlflow_store(url: str) -> Any:
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    return SqlAlchemyStore(url)


def mlflow_tags(fields: dict[str, str]) -> list[Any]:
    from mlflow.entities.model_registry import RegisteredModelTag

    return [RegisteredModelTag(k, v) for k, v in fields.items()]


class Floor:
    """Plain SQLAlchemy Core on lume-services' tables: prepared statements, one per transaction."""

    def __init__(self, url: str, dialect: str) -> None:
        from lume_services.services.models.db.mysql_conv import pymysql_connect_args

        # The same driver settings as lume-services' own connections (on MariaDB: its DATETIME decoder).
        mysql = {"connect_args": pymysql_connect_args()} if dialect == "mariadb" else {}
        self.engine = create_engine(url, **mysql)
        if dialect == "sqlite":  # the same durability as lume-services' own connections

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA journal_mode=WAL")
                dbapi_conn.execute("PRAGMA synchronous=NORMAL")

        self.model_insert = insert(Model.__table__)
        self.deployment_insert = insert(Deployment.__table__)
        self.event_insert = insert(AuditEvent.__table__)
        self.model_by_id = select(Model.__table__).where(Model.__table__.c.model_id == bindparam("model_id"))
        deployments = Deployment.__table__
        self.deployments_of = (
            select(deployments)
            .where(deployments.c.model_id == bindparam("model_id"))
            .order_by(deployments.c.deploy_date, deployments.c.deployment_id)
        )
        self.page_of = (
            select(deployments)
            .where(deployments.c.model_id == bindparam("model_id"))
            .order_by(deployments.c.deployment_id)
            .limit(101)
        )

    def _event(self, conn: Any, action: str, key: Any, values: dict[str, Any]) -> None:
        after = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in values.items()}
        conn.execute(
            self.event_insert,
            dict(time=_now(), actor="bench", action=action, entity=action.split(".")[0], entity_id=str(key),
                 model_id=values.get("model_id", key), before=None, after=after),
        )  # fmt: skip

    def insert_model(self, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            key = conn.execute(self.model_insert, values).inserted_primary_key[0]
            self._event(conn, "model.created", key, values)

    def insert_deployment(self, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            key = conn.execute(self.deployment_insert, values).inserted_primary_key[0]
            self._event(conn, "deployment.created", key, values)

    def get_model(self, model_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(self.model_by_id, {"model_id": model_id}).first()

    def deployments(self, model_id: int, page: bool = False) -> list[Any]:
        """The SELECT of get_deployments (or of a list_deployments page), fetchall(): rows, no records."""
        with self.engine.connect() as conn:
            return conn.execute(self.page_of if page else self.deployments_of, {"model_id": model_id}).fetchall()


# -- building large registries ------------------------------------------------------------


def build_ours(service: ModelDBService, start: int, count: int) -> list[int]:
    """``count`` models, each with two deployments, the second live (bulk path)."""
    ids = service.store_models(model_fields(i) for i in range(start, start + count))
    service.store_deployments(
        deployment_fields(m, version, is_live=version == "1.1.0")
        for m in ids
        for version in ("1.0.0", "1.1.0")
    )
    return ids


def build_mlflow(store: Any, start: int, count: int, chunk: int = 2000) -> list[str]:
    """The same in MLflow's tables (Core inserts): model, 5 tags, versions 1 and 2, alias live=2."""
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlRegisteredModel,
        SqlRegisteredModelAlias,
        SqlRegisteredModelTag,
    )

    names = []
    now = int(time.time() * 1000)
    for first in range(start, start + count, chunk):
        block = range(first, min(first + chunk, start + count))
        models = [(f"bench-model-{i}", model_fields(i)) for i in block]
        with store.engine.begin() as conn:
            conn.execute(
                insert(SqlRegisteredModel.__table__),
                [dict(name=n, creation_time=now, last_updated_time=now) for n, _ in models],
            )
            conn.execute(
                insert(SqlRegisteredModelTag.__table__),
                [dict(name=n, key=k, value=v) for n, f in models for k, v in f.items()],
            )
            conn.execute(
                insert(SqlModelVersion.__table__),
                [
                    dict(
                        name=n,
                        version=v,
                        creation_time=now,
                        last_updated_time=now,
                        source=f"https://example.org/releases/{n}-{v}.tar.gz",
                        storage_location=f"https://example.org/releases/{n}-{v}.tar.gz",
                        current_stage="None",
                        status="READY",
                    )
                    for n, _ in models
                    for v in (1, 2)
                ],
            )
            conn.execute(
                insert(SqlRegisteredModelAlias.__table__),
                [dict(name=n, alias="live", version=2) for n, _ in models],
            )
        names += [n for n, _ in models]
    return names


def mlflow_versions(store: Any, name: str, count: int) -> None:
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion

    now = int(time.time() * 1000)
    rows = [
        dict(
            name=name,
            version=v,
            creation_time=now + v,
            last_updated_time=now + v,
            source=f"s3://bench/{name}/{v}",
            storage_location=f"s3://bench/{name}/{v}",
            current_stage="None",
            status="READY",
        )
        for v in range(1, count + 1)
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(SqlModelVersion.__table__), rows)


def analyze(engine: Any) -> None:
    from sqlalchemy import inspect, text

    with engine.begin() as conn:
        tables = inspect(conn).get_table_names()
        conn.execute(text(f"ANALYZE TABLE {', '.join(tables)}"))


# -- concurrent writers ----------------------------------------------------------------------


def _writer(system: str, url: str, target: Any, index: int, count: int, barrier: Any, queue: Any) -> None:
    ok, errors, first_error, started, ended = 0, 0, None, 0.0, 0.0
    try:
        if system == "lume-services":
            service = ModelDBService(ModelDB(ModelDBConfig(url=url)))
            service.get_projects()

            def write(i: int) -> None:
                service.store_deployment(**deployment_fields(target, f"9.{index}.{i}"))

        else:
            from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

            for engine in SqlAlchemyStore._engine_map.values():  # the parent's pooled connections
                engine.dispose(close=False)
            SqlAlchemyStore._engine_map.clear()
            store = SqlAlchemyStore(url)

            def write(i: int) -> None:
                store.create_model_version(target, source=f"s3://bench/{index}/{i}")

        barrier.wait(timeout=120)
        started = time.perf_counter()
        for i in range(count):
            try:
                write(i)
                ok += 1
            except Exception as exc:  # counted and reported, as a user would see it
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        ended = time.perf_counter()
    except Exception as exc:
        first_error = f"writer failed: {type(exc).__name__}: {exc}"
        errors = count - ok
    queue.put((ok, errors, first_error, started, ended))


def concurrent_writes(system: str, url: str, target: Any, settings: Settings) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(settings.writers), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(system, url, target, i, settings.per_writer, barrier, queue))
        for i in range(settings.writers)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    ok = sum(r[0] for r in results)
    starts = [r[3] for r in results if r[3]]
    wall = max(r[4] for r in results) - min(starts) if starts else float("nan")
    errors = sum(r[1] for r in results)
    return {
        "ok": ok,
        "errors": errors,
        "rate": ok / wall if wall else 0.0,
        "first_error": next((r[2] for r in results if r[2]), None),
    }


# -- one dialect --------------------------------------------------------------------------


@contextmanager
def database_server(dialect: str, work: Path) -> Iterator[Callable[[str], str]]:
    """A function that creates an empty database on the server and returns its URL."""
    if dialect == "sqlite":
        yield lambda name: f"sqlite:///{work / name}.db"
        return
    import dbservers

    server = dbservers.start_mariadb(work)
    try:
        yield server.create_database
    finally:
        server.stop()


def run_dialect(dialect: str, settings: Settings, work: Path, log: Callable[[str], None]) -> list[Result]:
    results: list[Result] = []
    with database_server(dialect, work) as new_database:
        urls = {name: new_database(name) for name in ("lume", "mlflow", "lume_scale", "mlflow_scale")}
        started = time.perf_counter()
        service, store, floor = (
            lume_service(urls["lume"]),
            mlflow_store(urls["mlflow"]),
            Floor(urls["lume"], dialect),
        )
        big_service, big_store = lume_service(urls["lume_scale"]), mlflow_store(urls["mlflow_scale"])
        log(f"{dialect}: schemas ready in {time.perf_counter() - started:.1f} s")

        # two registries of each system, `base` and `scale` models, each model with two
        # deployments (versions), the second live; their pages are measured side by side
        sizes = {
            settings.base: (
                service,
                store,
                build_ours(service, 0, settings.base),
                build_mlflow(store, 0, settings.base),
            )
        }
        started = time.perf_counter()
        big_ids = build_ours(big_service, 0, settings.scale)
        log(
            f"{dialect}: lume-services registry of {settings.scale:,} models built in {time.perf_counter() - started:.1f} s (bulk path)"
        )
        started = time.perf_counter()
        sizes[settings.scale] = (big_service, big_store, big_ids, build_mlflow(big_store, 0, settings.scale))
        log(
            f"{dialect}: MLflow registry of {settings.scale:,} models built in {time.perf_counter() - started:.1f} s (Core inserts)"
        )
        if (
            dialect != "sqlite"
        ):  # InnoDB refreshes statistics after big changes in the background: do it now, for both
            for engine in (
                service.model_db.engine,
                big_service.model_db.engine,
                store.engine,
                big_store.engine,
            ):
                analyze(engine)
        results += pages(dialect, settings, sizes)
        results += history_reads(dialect, settings, sizes)
        log(f"{dialect}: history reads done")
        big_service.model_db.dispose()
        big_store.engine.dispose()
        log(f"{dialect}: pages done")

        results += single_operations(dialect, settings, service, store, floor)
        log(f"{dialect}: single operations done")
        results += many_deployments(dialect, settings, service, store, floor)
        log(f"{dialect}: {settings.versions}-deployment model done")

        target = service.store_model(**model_fields("concurrent"))
        store.create_registered_model("bench-concurrent", tags=mlflow_tags(model_fields("concurrent")))
        ours = concurrent_writes("lume-services", urls["lume"], target, settings)
        theirs = concurrent_writes("mlflow", urls["mlflow"], "bench-concurrent", settings)
        results.append(
            Result(
                dialect,
                f"{settings.writers} concurrent writers",
                "create_model_version",
                extra={"ours": ours, "mlflow": theirs},
            )
        )
        log(f"{dialect}: concurrent writers done")
        service.model_db.dispose()
        floor.engine.dispose()
        store.engine.dispose()
    return results


def pages(
    dialect: str, settings: Settings, sizes: dict[int, tuple[Any, Any, list[int], list[str]]]
) -> list[Result]:
    """First and middle page of 100 models with their live deployment, every size interleaved."""
    from mlflow.utils.search_utils import SearchUtils

    calls = {}
    for size, (service, store, ids, names) in sizes.items():
        after, token = ids[len(ids) // 2], SearchUtils.create_page_token(len(names) // 2)
        calls[f"ours first {size}"] = lambda s=service: s.list_models_with_live(limit=100)
        calls[f"mlflow first {size}"] = lambda st=store: st.search_registered_models(max_results=100)
        calls[f"ours middle {size}"] = lambda s=service, a=after: s.list_models_with_live(limit=100, after=a)
        calls[f"mlflow middle {size}"] = lambda st=store, t=token: st.search_registered_models(
            max_results=100, page_token=t
        )
    times = medians(calls, settings.reads, budget=4.0)
    return [
        Result(
            dialect,
            f"{which} page of 100 models with live, {size:,} models",
            "search_registered_models" + ("(page_token)" if which == "middle" else ""),
            ours=times[f"ours {which} {size}"],
            mlflow=times[f"mlflow {which} {size}"],
        )
        for size in sizes
        for which in ("first", "middle")
    ]


def fill_history(service: ModelDBService, model_id: int, count: int) -> datetime:
    """``count`` live changes of one model and ``count`` audit events (Core inserts); returns a time in the middle."""
    deployments = [d.deployment_id for d in service.get_deployments(model_id=model_id)]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with service.model_db.engine.begin() as conn:
        for first in range(0, count, 5000):
            block = range(first, min(first + 5000, count))
            conn.execute(
                insert(LiveChange.__table__),
                [dict(model_id=model_id, deployment_id=deployments[i % 2], version=("1.0.0", "1.1.0")[i % 2],
                      time=start + timedelta(seconds=i), actor="bench") for i in block],
            )  # fmt: skip
            conn.execute(
                insert(AuditEvent.__table__),
                [dict(time=start + timedelta(seconds=i), actor=f"actor {i % 50}", action="deployment.live_changed",
                      entity="deployment", entity_id=str(deployments[i % 2]), model_id=model_id if i % 2 else i,
                      before={"live_deployment_id": deployments[(i + 1) % 2]},
                      after={"live_deployment_id": deployments[i % 2]}) for i in block],
            )  # fmt: skip
    return start + timedelta(seconds=count // 2, milliseconds=500)


def history_reads(
    dialect: str, settings: Settings, sizes: dict[int, tuple[Any, Any, list[int], list[str]]]
) -> list[Result]:
    """Live at a past time and pages of audit events, at 1,000 and at ``scale`` changes and events."""
    calls = {}
    for size, (service, _store, ids, _names) in sizes.items():
        at = fill_history(service, ids[0], size)
        middle = service.list_audit_events(limit=1, since=at).items[0].event_id
        calls[f"live at {size}"] = lambda s=service, m=ids[0], t=at: s.get_live_deployment(m, at=t)
        calls[f"events {size}"] = lambda s=service, a=middle: s.list_audit_events(limit=100, after=a)
        calls[f"model events {size}"] = lambda s=service, m=ids[0], a=middle: s.list_audit_events(
            model_id=m, limit=100, after=a
        )
    times = medians(calls, settings.reads * 5, rounds=10, budget=4.0)
    names = {
        "live at": "get_live_deployment(at=T)",
        "events": "page of 100 audit events",
        "model events": "page of 100 audit events of one model",
    }
    return [
        Result(dialect, f"{label}, {size:,} changes/events", "(none)", ours=times[f"{key} {size}"])
        for key, label in names.items()
        for size in sizes
    ]


def single_operations(
    dialect: str, settings: Settings, service: ModelDBService, store: Any, floor: Floor
) -> list[Result]:
    n, results = settings.ops, []
    model_id = service.store_model(**model_fields("single"))
    store.create_registered_model("bench-single", tags=mlflow_tags(model_fields("single")))
    floor_model = service.store_model(**model_fields("floor"))

    nxt = counter()
    created = medians(
        {
            "ours": lambda: service.store_model(**model_fields(f"create {nxt()}")),
            "mlflow": lambda: (
                i := nxt(),
                store.create_registered_model(
                    f"bench-create-{i}", tags=mlflow_tags(model_fields(f"create {i}"))
                ),
            ),
            "floor": lambda: floor.insert_model({**model_fields(f"floor {nxt()}"), "created": _now()}),
        },
        n,
        rounds=20,  # fast calls: finer turns, so that load bursts hit all systems alike
    )
    results.append(Result(dialect, "create model", "create_registered_model + 5 tags", **created))

    stored = medians(
        {
            "ours": lambda: service.store_deployment(**deployment_fields(model_id, f"1.{nxt()}")),
            "mlflow": lambda: store.create_model_version("bench-single", source=f"s3://bench/single/{nxt()}"),
            "floor": lambda: floor.insert_deployment(
                {**deployment_fields(floor_model, f"1.{nxt()}"), "deploy_date": _now()}
            ),
        },
        n,
        rounds=20,  # fast calls: finer turns, so that load bursts hit all systems alike
    )
    results.append(Result(dialect, "store deployment", "create_model_version", **stored))

    store.set_registered_model_alias("bench-single", "live", 1)
    got = medians(
        {
            "ours": lambda: service.get_model(model_id=model_id),
            "mlflow": lambda: store.get_registered_model("bench-single"),
            "floor": lambda: floor.get_model(model_id),
        },
        n,
        rounds=20,  # fast calls: finer turns, so that load bursts hit all systems alike
    )
    results.append(Result(dialect, "get model by id", "get_registered_model", **got))

    latest = medians(
        {
            "ours": lambda: service.get_latest_deployment(model_id=model_id),
            "mlflow": lambda: store.get_model_version_by_alias("bench-single", "live"),
            "mlflow_latest_versions": lambda: store.get_latest_versions("bench-single"),
        },
        n,
        rounds=20,  # fast calls: finer turns, so that load bursts hit all systems alike
    )
    results.append(
        Result(
            dialect,
            "latest deployment",
            "get_model_version_by_alias",
            ours=latest["ours"],
            mlflow=latest["mlflow"],
            extra={"get_latest_versions": latest["mlflow_latest_versions"]},
        )
    )

    deployments = [d.deployment_id for d in service.get_deployments(model_id=model_id)][:50]
    versions = itertools.cycle(range(1, 51))
    live = itertools.cycle(deployments)
    made_live = medians(
        {
            "ours": lambda: service.set_live(next(live)),
            "mlflow": lambda: store.set_registered_model_alias("bench-single", "live", next(versions)),
        },
        n,
        rounds=20,  # fast calls: finer turns, so that load bursts hit all systems alike
    )
    results.append(Result(dialect, "set live", "set_registered_model_alias", **made_live))
    return results


def many_deployments(
    dialect: str, settings: Settings, service: ModelDBService, store: Any, floor: Floor
) -> list[Result]:
    count = settings.versions
    model_id = service.store_model(**model_fields("many"))
    service.store_deployments(deployment_fields(model_id, f"2.{i}") for i in range(count))
    store.create_registered_model("bench-many", tags=mlflow_tags(model_fields("many")))
    mlflow_versions(store, "bench-many", count)
    by_name = "name='bench-many'"
    latest = medians(
        {
            "ours": lambda: service.get_latest_deployment(model_id=model_id),
            "mlflow": lambda: store.get_registered_model("bench-many"),
            "mlflow_latest_versions": lambda: store.get_latest_versions("bench-many"),
        },
        settings.reads,
        budget=2.5,
    )
    listed = medians(
        {
            "ours": lambda: service.get_deployments(model_id=model_id),
            "mlflow": lambda: store.search_model_versions(by_name, max_results=count),
            "floor": lambda: floor.deployments(model_id),
        },
        settings.reads,
        budget=2.5,
    )
    page = medians(
        {
            "ours": lambda: service.list_deployments(model_id=model_id, limit=100),
            "mlflow": lambda: store.search_model_versions(by_name, max_results=100),
            "floor": lambda: floor.deployments(model_id, page=True),
        },
        settings.reads,
        budget=2.5,
    )
    return [
        Result(
            dialect,
            f"{count} deployments: latest",
            "get_registered_model",
            ours=latest["ours"],
            mlflow=latest["mlflow"],
            extra={"get_latest_versions": latest["mlflow_latest_versions"]},
        ),
        Result(dialect, f"{count} deployments: list all", "search_model_versions", **listed),
        Result(
            dialect, f"{count} deployments: page of 100", "search_model_versions(max_results=100)", **page
        ),
    ]


def _now() -> Any:
    return datetime.now(UTC)


# -- report -----------------------------------------------------------------------------------


def fmt(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.2f} ms" if seconds >= 0.001 else f"{seconds * 1e6:.0f} us"


def print_table(results: list[Result]) -> None:
    header = ["dialect", "operation", "lume-services", "MLflow", "MLflow call", "Core floor"]
    rows = []
    for r in results:
        if "ours" in r.extra and isinstance(r.extra["ours"], dict):
            o, m = r.extra["ours"], r.extra["mlflow"]
            rows.append(
                [
                    r.dialect,
                    r.operation,
                    f"{o['rate']:.0f}/s, {o['errors']} errors",
                    f"{m['rate']:.0f}/s, {m['errors']} errors",
                    r.mlflow_call,
                    "-",
                ]
            )
            continue
        mlflow = fmt(r.mlflow)
        if "get_latest_versions" in r.extra:
            mlflow += f" ({fmt(r.extra['get_latest_versions'])} get_latest_versions)"
        rows.append([r.dialect, r.operation, fmt(r.ours), mlflow, r.mlflow_call, fmt(r.floor)])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    print(line(header))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))


def ratio_lines(results: list[Result], settings: Settings) -> list[str]:
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    by = {(r.dialect, r.operation): r for r in results}
    for r in results:
        d = r.dialect
        if r.operation in ("create model", "store deployment", "set live"):
            x = r.mlflow / r.ours
            lines.append(f"{d} {r.operation}: {x:.1f}x MLflow's rate (goal >= 3x: {verdict(x >= 3)})")
            if r.floor is not None:
                y = r.ours / r.floor
                lines.append(
                    f"{d} {r.operation}: {y:.2f}x the Core floor's time (goal <= 2x: {verdict(y <= 2)})"
                )
        elif r.operation in ("get model by id", "latest deployment") or "page of 100 models" in r.operation:
            x = r.mlflow / r.ours
            lines.append(
                f"{d} {r.operation}: {x:.1f}x faster than MLflow {r.mlflow_call} (goal >= 5x: {verdict(x >= 5)})"
            )
            if r.floor is not None:
                lines.append(f"{d} {r.operation}: {r.ours / r.floor:.2f}x the Core floor's time (no goal)")
            if "get_latest_versions" in r.extra:
                x = r.extra["get_latest_versions"] / r.ours
                lines.append(
                    f"{d} {r.operation}: {x:.1f}x faster than MLflow get_latest_versions (goal >= 5x: {verdict(x >= 5)})"
                )
        elif r.operation.startswith(f"{settings.versions} deployments"):
            x = r.mlflow / r.ours
            lines.append(
                f"{d} {r.operation}: {x:.1f}x faster than MLflow {r.mlflow_call} (goal >= 5x: {verdict(x >= 5)})"
            )
            lines.append(f"{d} {r.operation}: {fmt(r.ours)} (goal < 5 ms: {verdict(r.ours < 0.005)})")
            if r.floor is not None:
                y = r.ours / r.floor
                goal = f"goal <= 2x: {verdict(y <= 2)}" if "list all" in r.operation else "no goal"
                lines.append(
                    f"{d} {r.operation}: {fmt(r.ours)} vs Core floor (same SELECT, fetchall) "
                    f"{fmt(r.floor)}: {y:.2f}x ({goal})"
                )
        elif "concurrent" in r.operation:
            o, m = r.extra["ours"], r.extra["mlflow"]
            lines.append(
                f"{d} {r.operation}: lume-services {o['rate']:.0f} writes/s, {o['errors']} errors (goal 0: {verdict(o['errors'] == 0)})"
            )
            lines.append(
                f"{d} {r.operation}: MLflow {m['rate']:.0f} writes/s, {m['errors']} errors"
                + (f" (first: {m['first_error']})" if m["first_error"] else "")
            )
            if m["rate"]:
                lines.append(f"{d} {r.operation}: {o['rate'] / m['rate']:.1f}x MLflow's throughput")
    for d in sorted({r.dialect for r in results}):
        for label in ("get_live_deployment(at=T)", "page of 100 audit events", "page of 100 audit events of one model"):
            small = by.get((d, f"{label}, {settings.base:,} changes/events"))
            large = by.get((d, f"{label}, {settings.scale:,} changes/events"))
            if small and large:
                x = large.ours / small.ours
                lines.append(
                    f"{d} {label}: {fmt(small.ours)} at {settings.base:,}, {fmt(large.ours)} at "
                    f"{settings.scale:,} changes/events: {x:.2f}x (goal flat, <= 1.5x: {verdict(x <= 1.5)})"
                )
        for which in ("first", "middle"):
            small = by.get((d, f"{which} page of 100 models with live, {settings.base:,} models"))
            large = by.get((d, f"{which} page of 100 models with live, {settings.scale:,} models"))
            if small and large:
                x = large.ours / small.ours
                y = large.mlflow / small.mlflow
                lines.append(
                    f"{d} {which} page at {settings.scale:,} / at {settings.base:,} models: lume-services {x:.2f}x "
                    f"(goal <= 1.5x: {verdict(x <= 1.5)}), MLflow {y:.2f}x"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer samples, 10,000-model scale (< 3 minutes)"
    )
    parser.add_argument("--dialect", choices=["sqlite", "mariadb", "both"], default="both")
    parser.add_argument(
        "--scale", type=int, help="models in the scale test (default 10,000 quick, 100,000 full)"
    )
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    if args.scale:
        settings = Settings(**{**settings.__dict__, "scale": args.scale})
    warnings.filterwarnings("ignore")
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    import mlflow

    for name in ("mlflow", "alembic"):  # after the import: MLflow sets up its own logging then
        logging.getLogger(name).setLevel(logging.WARNING)

    log(f"MLflow {mlflow.__version__} imported")
    dialects = ["sqlite", "mariadb"] if args.dialect == "both" else [args.dialect]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="lume-bench-") as tmp:
        for dialect in dialects:
            work = Path(tmp) / dialect
            work.mkdir()
            results += run_dialect(dialect, settings, work, log)
    print_table(results)
    print()
    for line in ratio_lines(results, settings):
        print(line)
    log(f"done ({'quick' if args.quick else 'full'} run)")


if __name__ == "__main__":
    main()
