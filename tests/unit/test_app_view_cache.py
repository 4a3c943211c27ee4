"""Display objects built once per distinct data (app_streamlit.view_cache)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pyarrow as pa

from app_streamlit import data, view_cache


def test_a_build_is_reused_for_the_same_rows_and_redone_for_new_rows() -> None:
    view_cache.clear()
    builds: list[int] = []

    def build(n: int) -> int:
        builds.append(n)
        return n

    first = data._rows('[{"a": 1}]')
    same = data._rows('[{"a": 1}]')  # another read of the same cached result
    other = data._rows('[{"a": 2}]')
    assert first is not None
    assert same is not None
    assert other is not None
    assert first.digest == same.digest != other.digest
    assert view_cache.memo("k", first, lambda: build(1)) == 1
    assert view_cache.memo("k", same, lambda: build(2)) == 1
    assert view_cache.memo("k", other, lambda: build(3)) == 3
    assert view_cache.memo("k", first, lambda: build(4), "other extra") == 4
    assert builds == [1, 3, 4]


def test_plain_data_is_keyed_by_value_and_unkeyable_data_is_always_built() -> None:
    view_cache.clear()
    assert view_cache.memo("c", {"low": 1}, lambda: "a") == "a"
    assert view_cache.memo("c", {"low": 1}, lambda: "b") == "a"
    assert view_cache.memo("c", {"low": 2}, lambda: "c") == "c"
    unkeyable = {object()}
    assert view_cache.memo("u", unkeyable, lambda: 1) == 1
    assert view_cache.memo("u", unkeyable, lambda: 2) == 2


def test_the_memo_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    view_cache.clear()
    monkeypatch.setattr(view_cache, "MAX_ENTRIES", 3)
    for i in range(10):
        view_cache.memo("b", [i], lambda: None)
    assert len(view_cache._memo) == 3


def test_tables_and_chart_specs_are_what_streamlit_sends() -> None:
    view_cache.clear()
    rows = data._rows('[{"tier": "low", "n": 3}, {"tier": "high", "n": 1}]')
    table = view_cache.table("t", rows, lambda: pd.DataFrame(rows))
    assert isinstance(table, pa.Table)
    assert table.column_names == ["tier", "n"]
    chart = alt.Chart(pd.DataFrame(rows)).mark_bar().encode(x="tier:N", y="n:Q")
    spec = view_cache.vega_spec(chart)
    assert (
        spec["mark"]["type"] == "bar" if isinstance(spec["mark"], dict) else spec["mark"] == "bar"
    )
    assert spec["datasets"]  # the data travels as Arrow with the spec
