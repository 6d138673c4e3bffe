"""Concurrent writers in real processes: no duplicates, one live deployment, one compare-and-swap winner.

Sixteen forked processes hit the same model at the same moment (a barrier
releases them together) on each dialect.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback

import pytest
from factories import make_model, sha
from sqlalchemy import func, select

from lume_services.errors import LiveDeploymentChangedError
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.models.db.schema import Deployment, Model
from lume_services.services.models.service import ModelDBService

WRITERS = 16
pytestmark = pytest.mark.slow


def _worker(url, barrier, queue, job, args):
    try:
        service = ModelDBService(ModelDB(ModelDBConfig(url=url)))
        barrier.wait(timeout=60)
        queue.put(("ok", job(service, *args)))
    except Exception as exc:  # reported to the parent, which asserts on it
        queue.put(("error", type(exc).__name__, str(exc), traceback.format_exc()))


def run_concurrently(model_db: ModelDB, job, args_per_writer):
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(len(args_per_writer)), ctx.Queue()
    url = model_db.url.render_as_string(hide_password=False)
    procs = [ctx.Process(target=_worker, args=(url, barrier, queue, job, args)) for args in args_per_writer]
    for p in procs:
        p.start()
    results = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def store_versions(service, model_id, versions):
    return [
        service.store_deployment(
            model_id=model_id, version=v, source="s", sha256=sha(v), package_import_name="pkg", is_live=True
        )
        for v in versions
    ]


def store_model(service):
    return service.store_model(
        author="Jackie Garrahan", laboratory="slac", facility="lcls", beampath="cu_hxr", description="raced"
    )


def store_conflicting(service, model_id, writer):
    return service.store_deployment(
        model_id=model_id,
        version="1.0",
        source="s",
        sha256=sha(f"bytes of writer {writer}"),
        package_import_name="pkg",
    )


def rows(model_db, *where):
    with model_db.session(write=False) as s:
        return s.execute(select(Deployment.version, Deployment.is_live).where(*where)).all()


class TestConcurrentWriters:
    def test_live_flag_and_versions_stay_consistent(self, service, model_db):
        model_id = make_model(service)
        versions = [f"0.{i}" for i in range(4)]
        # every writer stores the same four versions, in its own order, each made live
        plans = [(model_id, versions[w % 4 :] + versions[: w % 4]) for w in range(WRITERS)]
        results = run_concurrently(model_db, store_versions, plans)
        assert [r for r in results if r[0] != "ok"] == []
        stored = rows(model_db, Deployment.model_id == model_id)
        assert sorted(v for v, _ in stored) == versions
        assert sum(live for _, live in stored) == 1
        ids = {tuple(sorted(r[1])) for r in results}
        assert len(ids) == 1  # every writer got the same four deployment ids

    def test_get_or_create_model_race(self, service, model_db):
        results = run_concurrently(model_db, store_model, [()] * WRITERS)
        assert [r for r in results if r[0] != "ok"] == []
        assert len({r[1] for r in results}) == 1
        with model_db.session(write=False) as s:
            assert s.execute(select(func.count()).select_from(Model)).scalar_one() == 1

    def test_same_version_different_bytes_one_winner(self, service, model_db):
        model_id = make_model(service)
        results = run_concurrently(model_db, store_conflicting, [(model_id, w) for w in range(WRITERS)])
        outcomes = sorted(r[0] if r[0] == "ok" else r[1] for r in results)
        assert outcomes == ["DeploymentConflictError"] * (WRITERS - 1) + ["ok"], results
        assert len(rows(model_db, Deployment.model_id == model_id)) == 1


ROUNDS = 3


def _cas_racer(url, barrier, queue, deployment_ids, model_id):
    """Each round: read the live deployment, wait for all, then compare-and-swap to a new one of ours.

    (A deployment of ours per round: swapping to the one already live would be a no-op success.)
    """
    try:
        service = ModelDBService(ModelDB(ModelDBConfig(url=url)), actor=f"racer-{deployment_ids[0]}")
        outcomes = []
        for deployment_id in deployment_ids:
            seen = service.get_live_deployment(model_id).deployment_id
            barrier.wait(timeout=60)
            try:
                service.set_live(deployment_id, expected_live=seen, reason="race")
                outcomes.append("ok")
            except LiveDeploymentChangedError as exc:
                assert exc.expected == seen and exc.actual != seen
                outcomes.append("changed")
            barrier.wait(timeout=60)
        queue.put(("ok", outcomes))
    except Exception as exc:
        queue.put(("error", type(exc).__name__, str(exc), traceback.format_exc()))


class TestCompareAndSwapRace:
    def test_one_winner_per_round_and_a_history_without_overlap(self, service, model_db):
        model_id = make_model(service)
        first = service.store_deployment(
            model_id=model_id, version="0", source="s", sha256=sha("0"), package_import_name="pkg", is_live=True
        )
        own = [
            [
                service.store_deployment(
                    model_id=model_id, version=f"{r}.{w}", source="s", sha256=sha(f"{r}.{w}"),
                    package_import_name="pkg",
                )  # fmt: skip
                for r in range(1, ROUNDS + 1)
            ]
            for w in range(WRITERS)
        ]
        ctx = mp.get_context("fork")
        barrier, queue = ctx.Barrier(WRITERS), ctx.Queue()
        url = model_db.url.render_as_string(hide_password=False)
        procs = [ctx.Process(target=_cas_racer, args=(url, barrier, queue, d, model_id)) for d in own]
        for p in procs:
            p.start()
        results = [queue.get(timeout=240) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert [r for r in results if r[0] != "ok"] == []
        for round_ in range(ROUNDS):
            outcomes = sorted(r[1][round_] for r in results)
            assert outcomes == ["changed"] * (WRITERS - 1) + ["ok"], (round_, outcomes)
        history = service.get_live_history(model_id)
        assert len(history) == ROUNDS + 1 and history[0].deployment_id == first
        for earlier, later in zip(history, history[1:]):
            assert earlier.live_until == later.live_from and earlier.live_from <= earlier.live_until
            assert earlier.ended_by == later.set_by
        assert history[-1].live_until is None
        wins = service.list_audit_events(model_id=model_id, action="deployment.live_changed", limit=100).items
        assert len(wins) == ROUNDS + 1
        assert sum(live for _, live in rows(model_db, Deployment.model_id == model_id)) == 1
