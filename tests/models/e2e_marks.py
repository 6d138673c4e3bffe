"""Which databases the end-to-end tests run on.

End-to-end tests exercise Prefect, uv and subprocesses; the database layer is
covered on every dialect by tests/services. They run on SQLite, except those
marked ``on_every_dialect``, which also run on MariaDB and PostgreSQL.
"""

import os

import pytest

ALL_DIALECTS = [
    d.strip() for d in os.environ.get("LUME_TEST_DIALECTS", "sqlite,mariadb,postgresql").split(",")
]
on_every_dialect = pytest.mark.parametrize("dialect", ALL_DIALECTS, indirect=True)
