"""Machine learning for opsdash: pure functions over DataFrames plus thin warehouse and MLflow
access. No Dagster here; `orchestration/` wraps these in assets."""
