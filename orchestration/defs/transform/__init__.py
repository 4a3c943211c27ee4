"""Transform domain: the dbt project as assets, and when it runs."""

import dagster as dg

from orchestration.defs.transform.assets import opsdash_dbt_models
from orchestration.defs.transform.resources import DbtResource
from orchestration.defs.transform.schedules import (
    SCHEDULES,
    check_marts_job,
    check_marts_light_job,
    check_raw_trends_job,
    incremental_cycle_job,
    refresh_marts_job,
)

defs = dg.Definitions(
    assets=[opsdash_dbt_models],
    jobs=[
        incremental_cycle_job,
        refresh_marts_job,
        check_marts_job,
        check_marts_light_job,
        check_raw_trends_job,
    ],
    schedules=SCHEDULES,
    resources={"dbt": DbtResource()},
)
