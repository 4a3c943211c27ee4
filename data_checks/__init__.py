"""Data quality for opsdash: Great Expectations suites defined in code, and the runner that
Dagster asset checks call. No Dagster imports here, and no GX import until a suite runs.

    from data_checks import BY_NAME, validate
    result = validate(warehouse_url, BY_NAME["raw_sessions__valid_batch"])
    result.success, [o.label for o in result.failures]
"""

from data_checks.result import CheckResult, ExpectationOutcome
from data_checks.runner import CheckRun, run_check, validate
from data_checks.suite_types import LoadFacts, Severity, Suite
from data_checks.suites import BY_NAME, SUITES, suites_for

__all__ = [
    "BY_NAME",
    "SUITES",
    "CheckResult",
    "CheckRun",
    "ExpectationOutcome",
    "LoadFacts",
    "Severity",
    "Suite",
    "run_check",
    "suites_for",
    "validate",
]
