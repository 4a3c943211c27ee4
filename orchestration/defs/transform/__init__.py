"""Transform domain: the dbt project as assets, and when it runs."""

import dagster as dg

from orchestration.defs.transform.assets import dbt_resource, opsdash_dbt_models
from orchestration.defs.transform.schedules import SCHEDULES

defs = dg.Definitions(
    assets=[opsdash_dbt_models], schedules=SCHEDULES, resources={"dbt": dbt_resource()}
)
