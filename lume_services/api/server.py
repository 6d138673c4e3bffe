"""What ``lume-services serve`` runs: uvicorn on the app built from LUME_* settings.

``app_from_env`` is the factory each uvicorn worker process calls (so
``--workers N`` gives N processes, each with its own connection pool on the
one database). The token is only ever in the Authorization header, which
uvicorn's access log does not print.
"""

from __future__ import annotations

from typing import Any


def app_from_env() -> Any:
    from lume_services.api.app import create_app
    from lume_services.config import configure

    return create_app(configure())


def run(*, host: str, port: int, workers: int, forwarded_allow_ips: str | None = None,
        access_log: bool = True) -> None:  # fmt: skip
    import uvicorn

    from lume_services.api.protocol import protocol_path

    uvicorn.run(
        "lume_services.api.server:app_from_env", factory=True, host=host, port=port, workers=workers,
        proxy_headers=forwarded_allow_ips is not None, forwarded_allow_ips=forwarded_allow_ips,
        access_log=access_log, server_header=False, timeout_graceful_shutdown=10,
        http=protocol_path(),
    )  # fmt: skip
