"""The opsdash code location: merges each domain's definitions and the shared resources.

Heavy libraries (dbt, mlflow, shap, prophet, great_expectations) are imported inside the
functions that use them, so this module loads in a couple of seconds.
"""

import dagster as dg

from orchestration.defs import all_domain_defs
from orchestration.defs.resources import shared_resources

defs = dg.Definitions.merge(
    *all_domain_defs(),
    # In-process: on two cores a process per step costs more than the steps themselves.
    dg.Definitions(resources=shared_resources(), executor=dg.in_process_executor),
)
