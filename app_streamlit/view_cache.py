"""Display objects built once per distinct data, shared by every session of the process.

Fifty sessions refreshing the same page read the same cached rows; building the same pandas
frame, converting it to Arrow and turning the same Altair chart into a Vega-Lite spec (schema
validation, behind a process-wide lock in Streamlit) for each of them cost far more than the
read. Here such an object is built once per key - the digest of the rows it comes from
(`data.Rows.digest`, the same for every process reading the same cached result) plus whatever
else it depends on - and reused until the data changes. A new data version gives new rows, so
a new digest and a fresh build; rows without a digest (a literal fallback) are always built.

The values are treated as immutable: a `pyarrow.Table` for `st.dataframe`, a Vega-Lite spec for
`st.vega_lite_chart`, or plain tuples.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import altair as alt
import pandas as pd
import pyarrow as pa
import streamlit as st

T = TypeVar("T")
MAX_ENTRIES = 512

_memo: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()


def key_of(data: object) -> Hashable | None:
    """The memo key of some data: a cached result's digest, or a digest of small plain data
    (a dict of counts, a list of numbers); None when it cannot be keyed."""
    digest = getattr(data, "digest", None)
    if digest is not None:
        return str(digest)
    try:
        return json.dumps(data, sort_keys=True, default=_plain)
    except (TypeError, ValueError):
        return None


def _plain(value: object) -> str:
    """Dates and decimals key by their text; anything else (whose str may not tell two values
    apart, like a frame's) makes the data unkeyable."""
    if isinstance(value, datetime | date | Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def memo(kind: str, data: object, build: Callable[[], T], *extra: Hashable) -> T:
    """`build()` once per (kind, data, extra); unkeyable data is built every time."""
    data_key = key_of(data)
    if data_key is None:
        return build()
    key = (kind, data_key, extra)
    with _lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key]  # type: ignore[no-any-return,unused-ignore]
    value = build()
    with _lock:
        _memo[key] = value
        while len(_memo) > MAX_ENTRIES:
            _memo.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _memo.clear()


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as Streamlit would send it (its own conversion, which handles the column types
    Arrow does not take as they are)."""
    from streamlit import dataframe_util

    return dataframe_util.convert_pandas_df_to_arrow_table(frame)


def table(kind: str, data: object, build: Callable[[], pd.DataFrame], *extra: Hashable) -> Any:
    """An Arrow table for `st.dataframe`, built once per data: pass it where a frame went."""
    return memo(kind, data, lambda: arrow_table(build()), *extra)


def vega_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The Vega-Lite spec (data as Arrow) Streamlit makes of an Altair chart."""
    from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec

    return dict(_convert_altair_to_vega_lite_spec(chart))  # type: ignore[arg-type]


def chart(
    kind: str,
    data: object,
    build: Callable[[], alt.TopLevelMixin],
    *extra: Hashable,
    where: Any = None,
) -> None:
    """Draw an Altair chart whose spec is built once per data (in `where`, default the page)."""
    spec = memo(kind, data, lambda: vega_spec(build()), *extra)
    (where or st).vega_lite_chart(spec=spec, width="stretch")
