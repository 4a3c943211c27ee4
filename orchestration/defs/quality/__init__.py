"""Quality domain: Great Expectations suites (data_checks/) as asset checks on raw and marts."""

import dagster as dg

from orchestration.defs.quality.checks import QUALITY_CHECKS

defs = dg.Definitions(asset_checks=QUALITY_CHECKS)
