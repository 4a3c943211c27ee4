"""The support system's HTTP API as a swappable resource (ingestion's only own resource)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from opsdash_core.settings import get_settings

if TYPE_CHECKING:
    from orchestration.lib.ingest.support_client import SupportApiClient


class SupportApiResource(dg.ConfigurableResource):
    """The support system's HTTP API (simulated locally unless SUPPORT_API_URL says otherwise)."""

    base_url: str = ""
    token: str = ""
    page_size: int = 1000

    def client(self, log: dg.DagsterLogManager | None = None) -> SupportApiClient:
        # httpx is imported here, in the one step that calls the API, not by every process
        # that loads the code location.
        from orchestration.lib.ingest.support_client import SupportApiClient

        s = get_settings()
        return SupportApiClient(
            self.base_url or s.support_api_url,
            self.token or s.support_api_token,
            page_size=self.page_size,
            max_rps=s.support_api_max_rps,
            log=log.warning if log else _discard,
        )


def _discard(_message: str) -> None:
    """Retry messages go nowhere when no Dagster log is at hand (e.g. scripts)."""
