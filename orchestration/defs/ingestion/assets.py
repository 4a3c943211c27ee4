"""Ingestion assets: one factory over the table list (raw/<table>)."""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg

from orchestration.defs.ingestion.resources import SupportApiResource
from orchestration.defs.resources import SourceDbResource, WarehouseResource
from orchestration.lib.ingest.loader import Fetcher, IngestReport, ingest_table, source_fetcher
from orchestration.lib.ingest.read_ahead import read_ahead
from orchestration.lib.ingest.tables import TABLES, TableSpec, step_tags
from orchestration.lib.retries import INGESTION_RETRY


def _metadata(report: IngestReport) -> dict[str, dg.MetadataValue]:
    return {
        "rows_read": dg.MetadataValue.int(report.rows_read),
        "rows_upserted": dg.MetadataValue.int(report.rows_upserted),
        "rows_quarantined": dg.MetadataValue.int(report.rows_quarantined),
        "quarantine_rate": dg.MetadataValue.float(round(report.quarantine_rate, 4)),
        "watermark": dg.MetadataValue.text(str(report.watermark_after)),
        "seconds": dg.MetadataValue.float(round(report.seconds, 2)),
    }


def build_ingestion_asset(spec: TableSpec) -> dg.AssetsDefinition:
    """raw/<table>: new and changed rows since the watermark, upserted; bad rows quarantined."""

    @dg.asset(
        key=dg.AssetKey(["raw", spec.name]),
        group_name="ingestion",
        description=f"{spec.description} Loaded incrementally by updated_at watermark every "
        f"{spec.cadence_minutes} min; invalid rows go to raw.quarantine.",
        kinds={"postgres"} if spec.source else {"api", "postgres"},
        tags={"cadence_minutes": str(spec.cadence_minutes)},
        retry_policy=INGESTION_RETRY,
        op_tags=step_tags(spec.name),
    )
    def _ingest(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        source_db: SourceDbResource,
        support_api: SupportApiResource,
    ) -> dg.MaterializeResult:
        client = None
        fetch: Fetcher
        if spec.source is None:
            client = support_api.client(context.log)
            calls = client.inbound_calls

            def paged(since: datetime) -> Iterator[list[Any]]:
                # ~50 pages (50k calls) ahead: the paced requests go on while a batch loads
                return read_ahead(calls(since), depth=50, name="support-api")

            fetch = paged
        else:
            fetch = source_fetcher(source_db.resolved_url(), spec)
        try:
            report = ingest_table(
                warehouse.resolved_url(),
                spec,
                fetch,
                run_id=context.run.run_id,
                log=context.log.debug,
            )
        finally:
            if client:
                client.close()
        if report.rows_quarantined:
            context.log.warning(
                f"{report.rows_quarantined} {spec.name} rows quarantined (see raw.quarantine)"
            )
        return dg.MaterializeResult(metadata=_metadata(report))

    return _ingest


INGESTION_ASSETS = [build_ingestion_asset(spec) for spec in TABLES]
