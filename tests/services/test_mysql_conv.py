"""The DATETIME decoder given to PyMySQL gives what PyMySQL's own gives, for every text MySQL can send."""

from __future__ import annotations

from datetime import datetime

import pymysql.converters
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lume_services.services.models.db.mysql_conv import conversions, convert_datetime

TEXTS = [
    "2026-12-02 21:00:00.123456", "2026-12-02 21:00:00", "2026-12-02 21:00:00.1", "2026-12-02 21:00:00.123",
    "2026-12-02T21:00:00", "0000-00-00 00:00:00", "2007-02-31 23:06:20", "2026-12-02", "9999-12-31 23:59:59.999999",
    "1000-01-01 00:00:00.000000", "not a date", "", "2026-12-02 21:00:00+01:00", "2026-12-02 21:00:00Z",
]  # fmt: skip


@pytest.mark.parametrize("text", TEXTS)
def test_the_same_as_pymysqls_for_text_and_bytes(text: str) -> None:
    expected = pymysql.converters.convert_datetime(text)
    assert convert_datetime(text) == expected
    assert type(convert_datetime(text)) is type(expected)
    assert convert_datetime(text.encode("ascii")) == pymysql.converters.convert_datetime(text.encode("ascii"))


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)),
       st.integers(min_value=0, max_value=6))  # fmt: skip
def test_every_datetime_mysql_can_send(value: datetime, digits: int) -> None:
    text = value.strftime("%Y-%m-%d %H:%M:%S") + (f".{value.microsecond:06d}"[: digits + 1] if digits else "")
    assert convert_datetime(text) == pymysql.converters.convert_datetime(text)


def test_only_the_datetime_decoders_change() -> None:
    ours, theirs = conversions(), pymysql.converters.conversions
    changed = {k for k in theirs if ours[k] is not theirs[k]}
    assert {pymysql.constants.FIELD_TYPE.DATETIME, pymysql.constants.FIELD_TYPE.TIMESTAMP} == changed
    assert ours.keys() == theirs.keys()
