"""Quality domain: the Great Expectations suites (data_checks/) as asset checks on the raw tables.

The marts are checked by their dbt tests, which dagster-dbt shows as asset checks of the dbt
models (see data_checks/README.md for which layer owns which check).
"""

import dagster as dg

from orchestration.defs.quality.checks import QUALITY_CHECKS

defs = dg.Definitions(asset_checks=QUALITY_CHECKS)
