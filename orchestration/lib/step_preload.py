"""Libraries the first build's step processes would each import, imported once instead.

`first_build` forks every step from one forkserver (orchestration/defs/build). Every
ingestion and check step imports pandas and polars (~0.8 s), and the churn steps (training,
scoring, monitoring) each import scikit-learn, MLflow and SHAP (~4.6 s here): imported in the
forkserver, a forked step finds them loaded. The code location itself never imports this
module (its load stays < 3 s); only the executor's `preload_modules` names it.
"""

import mlflow  # noqa: F401
import numpy  # noqa: F401
import pandas  # noqa: F401
import polars  # noqa: F401
import shap  # noqa: F401
import sklearn.ensemble
import sklearn.linear_model  # noqa: F401
