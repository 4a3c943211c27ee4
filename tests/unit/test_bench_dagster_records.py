"""How the benchmarks read a cycle's time from Dagster's run records."""

from bench.dagster_records import RunRecord, StepSpan


def test_a_cycle_queued_behind_the_previous_one_is_timed_from_when_its_lane_freed() -> None:
    # created at the tick (t=60) while the previous cycle ran until t=75; started at t=77
    queued = RunRecord("b", "incremental_cycle", "SUCCESS", 60.0, 77.0, 117.0, previous_ended=75.0)
    assert queued.queued_s == 15.0
    assert queued.launch_s == 2.0
    assert queued.total_s == 42.0


def test_a_cycle_on_a_free_lane_is_timed_from_its_tick() -> None:
    free = RunRecord("a", "incremental_cycle", "SUCCESS", 0.0, 12.0, 52.0)
    assert free.queued_s == 0.0
    assert free.launch_s == 12.0
    assert free.total_s == 52.0


def test_the_critical_path_follows_what_each_step_waited_for_not_what_ran_beside_it() -> None:
    build = RunRecord("c", "first_build", "SUCCESS", 0.0, 0.0, 100.0)
    build.steps = [
        StepSpan("ingest_calls", 0.0, 40.0),
        StepSpan("ingest_sessions", 0.0, 30.0),
        StepSpan("check_sessions", 30.5, 35.0),
        StepSpan("dbt", 41.0, 80.0),
        StepSpan("forecasts", 80.5, 85.0),
        StepSpan("churn_training", 80.5, 99.0),
    ]
    assert [s.step for s in build.critical_path()] == ["ingest_calls", "dbt", "churn_training"]
