"""The documentation's generated parts hold to the code: every setting is described (the
configuration reference is rendered from those descriptions), and the Grafana dashboard
queries only metrics that a running llamactl exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from llamactl.devtools.docs_reference import (
    api_reference,
    configuration_reference,
    settings_fields,
)
from tests.conftest import AppHarness

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docs" / "grafana" / "llamactl.json"
# A metric name in PromQL: llamactl's own, or llama-server's (relabelled by llamactl).
METRIC = re.compile(r"\b(llamactl_[a-z_]+|llamacpp:[a-z_]+)\b")
# What Prometheus functions and histogram series add to a family's name.
SUFFIXES = ("_bucket", "_count", "_sum")


def test_every_setting_has_a_description() -> None:
    missing = [key for key, field, _section in settings_fields() if not field.description]
    assert not missing, f"settings without a description (config/settings.py): {missing}"


def test_the_configuration_reference_names_every_key_with_its_default() -> None:
    reference = configuration_reference()
    for key, _field, _section in settings_fields():
        assert f"| `{key}` |" in reference
    assert "| `server.port` | int | `8080` | `LLAMACTL_PORT` |" in reference
    assert "| `auth.secret` | string \\| null | `null` | `LLAMACTL_AUTH_SECRET` |" in reference


def test_the_api_reference_has_every_route_and_its_error_codes() -> None:
    reference = api_reference()
    for heading in ("## `POST /api/instances`", "## `GET /api/instances/{name}/logs`",
                    "## `POST /v1/chat/completions`", "### InstanceCreate"):
        assert heading in reference
    assert "| 409 |" in reference
    assert "[ErrorBody](#errorbody)" in reference


def dashboard_metrics() -> set[str]:
    document = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in document["panels"]
                   for target in panel["targets"]]
    assert expressions
    return {name for expr in expressions for name in METRIC.findall(expr)}


def exposed(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


async def test_the_grafana_dashboard_queries_only_exposed_metrics(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    created = await app.client.post("/api/instances", json={
        "name": "g", "model_path": str(model),
        "options": {"threads": 1, "context_size": 256}})
    assert created.status_code == 201, created.text
    assert (await app.client.post("/api/instances/g/start?wait=true")).status_code == 200
    completion = await app.client.post("/v1/completions",
                                       json={"model": "g", "prompt": "hi", "max_tokens": 2})
    assert completion.status_code == 200, completion.text
    metrics = await app.client.get("/metrics")
    available = exposed(metrics.text)
    wanted = dashboard_metrics()
    # The panels cover what the docs promise: statuses, lifecycle counts, start duration,
    # gateway traffic, and the backends' own throughput.
    assert {"llamactl_instances", "llamactl_instance_crashes_total",
            "llamactl_instance_start_duration_seconds_bucket",
            "llamactl_gateway_requests_total", "llamactl_gateway_requests_in_flight",
            "llamacpp:tokens_predicted_total"} <= wanted
    missing = sorted(name for name in wanted if name not in available)
    assert not missing, f"the dashboard queries metrics llamactl does not expose: {missing}"


# The API reference this project implements ends with links to these pages, relative to
# user-guide/api-reference.md (where the site puts its generated API reference).
SEED_LINKS = ("managing-instances.md", "../advanced/backends.md", "../advanced/monitoring.md")


def test_the_seeds_links_resolve_to_pages_in_the_navigation() -> None:
    navigation = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for link in SEED_LINKS:
        page = (ROOT / "docs" / "user-guide" / link).resolve()
        assert page.is_file(), link
        assert str(page.relative_to(ROOT / "docs")) in navigation, link
