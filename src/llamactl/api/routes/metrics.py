"""``GET /metrics`` (at the root, where Prometheus looks): llamactl's own metrics, then each
running instance's llama-server metrics with an ``instance`` label."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from llamactl.api.auth import authorize_scrape
from llamactl.api.deps import ServicesDep
from llamactl.monitoring.backends import ScrapeTarget, scrape_backends

router = APIRouter(tags=["metrics"], dependencies=[Depends(authorize_scrape)])

_EXAMPLE = """\
llamactl_instances{status="running"} 1.0
llamactl_instance_starts_total{instance="llama2-7b"} 1.0
llamacpp:tokens_predicted_total{instance="llama2-7b"} 128
"""


@router.get(
    "/metrics", summary="Prometheus metrics", response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {"example": _EXAMPLE}},
                     "description": "Prometheus text format 0.0.4"}},
)
async def metrics(services: ServicesDep) -> Response:
    manager = services.manager
    targets = [ScrapeTarget(owner.name, owner.port, owner.record.api_key,
                            owner.backend_host)
               for owner in manager.owners() if owner.status == "running"]
    backends = await scrape_backends(services.http, targets)
    body = services.metrics.render() + backends.encode()
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
