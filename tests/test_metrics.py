"""``GET /metrics``: llamactl's own metrics and the running llama-servers', relabelled."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from llamactl.monitoring.backends import add_label, merge_families
from tests.conftest import AppHarness
from tests.support.helpers import wait_status


async def create(app: AppHarness, name: str, model: Path, **fields: Any) -> None:
    response = await app.client.post("/api/instances",
                                     json={"name": name, "model_path": str(model), **fields})
    assert response.status_code == 201, response.text


async def scrape(app: AppHarness) -> str:
    response = await app.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    # Well-formed text format, or this raises.
    list(text_string_to_metric_families(response.text))
    return response.text


def value(text: str, sample: str) -> float | None:
    """The value of the sample line that starts with ``sample`` exactly (name and labels)."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_own_metrics_and_each_backends_metrics_with_its_instance_label(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    for name in ("m1", "m2"):
        await create(app, name, model, options={"threads": 1, "context_size": 512})
    assert (await app.client.post("/api/instances/m1/start?wait=true")).status_code == 200
    assert (await app.client.post("/api/instances/m2/start?wait=true")).status_code == 200
    completion = await app.client.post("/api/instances/m1/proxy/completion",
                                       json={"prompt": "hi", "n_predict": 3})
    assert completion.status_code == 200
    assert (await app.client.get("/api/instances/nope")).status_code == 404

    text = await scrape(app)
    assert value(text, 'llamactl_instances{status="running"}') == 2
    assert value(text, 'llamactl_instances{status="stopped"}') == 0
    assert value(text, 'llamactl_instance_starts_total{instance="m1"}') == 1
    assert value(text, "llamactl_instance_start_duration_seconds_count") == 2
    assert value(text, 'llamactl_backend_scrape_success{instance="m2"}') == 1
    # The backends' families: comments once, then the samples of both instances.
    assert text.count("# TYPE llamacpp:tokens_predicted_total counter") == 1
    assert (value(text, 'llamacpp:tokens_predicted_total{instance="m1"}') or 0) >= 1
    assert value(text, 'llamacpp:tokens_predicted_total{instance="m2"}') == 0
    # Requests by route template: bounded labels whatever the path was.
    assert value(text, 'llamactl_http_requests_total{method="POST",'
                       'route="/api/instances/{name}/start",status="200"}') == 2
    assert value(text, 'llamactl_http_requests_total{method="POST",'
                       'route="/api/instances/{name}/proxy/{path:path}",status="200"}') == 1
    assert value(text, 'llamactl_http_requests_total{method="GET",'
                       'route="/api/instances/{name}",status="404"}') == 1
    assert value(text, 'llamactl_websocket_clients') == 0


async def test_unknown_routes_are_one_label(make_settings: Any, make_app: Any) -> None:
    app: AppHarness = await make_app(make_settings(fake=True))
    for path in ("/api/nope", "/api/nope/again", "/elsewhere"):
        assert (await app.client.get(path)).status_code == 404
    assert (await app.client.delete("/api/system/status")).status_code == 405
    text = await scrape(app)
    assert value(text, 'llamactl_http_requests_total{method="GET",route="unmatched",'
                       'status="404"}') == 3
    assert value(text, 'llamactl_http_requests_total{method="DELETE",'
                       'route="/api/system/status",status="405"}') == 1
    assert "/api/nope" not in text


async def test_crashes_and_automatic_restarts_are_counted(
    make_settings: Any, make_app: Any, fake_model: Path
) -> None:
    app: AppHarness = await make_app(make_settings(fake=True, restart_delay=0.1, max_restarts=1))
    await create(app, "c", fake_model, extra_args=["--fake-crash-after", "1"])
    assert (await app.client.post("/api/instances/c/start")).status_code == 200
    await wait_status(app.client, "c", "failed")
    text = await scrape(app)
    assert value(text, 'llamactl_instance_starts_total{instance="c"}') == 2
    assert value(text, 'llamactl_instance_restarts_total{instance="c"}') == 1
    assert value(text, 'llamactl_instance_crashes_total{instance="c"}') == 2
    assert value(text, 'llamactl_instances{status="failed"}') == 1
    # The fake backend has no /metrics: it is not running anyway, so it is not scraped.
    assert "llamactl_backend_scrape_success{" not in text


async def test_rate_limited_requests_are_counted(make_settings: Any, make_app: Any) -> None:
    settings = make_settings(fake=True, sections={
        "rate_limit": {"enabled": True, "regular_per_minute": 2}})
    app: AppHarness = await make_app(settings)
    codes = [(await app.client.get("/api/instances")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    text = await scrape(app)  # /metrics is not under /api: not limited
    assert value(text, "llamactl_rate_limited_requests_total") == 1


@pytest.mark.parametrize(("line", "labelled"), [
    ("llamacpp:requests 3", 'llamacpp:requests{instance="m"} 3'),
    ('x{a="1",b="}{ "} 2 1700000000', 'x{instance="m",a="1",b="}{ "} 2 1700000000'),
    ("x{} 1", 'x{instance="m"} 1'),
])
def test_the_instance_label_goes_first(line: str, labelled: str) -> None:
    assert add_label(line, "m") == labelled


def test_families_of_several_backends_are_merged() -> None:
    histogram = ("# HELP h A histogram\n# TYPE h histogram\n"
                 'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n'
                 "# HELP g A gauge\n# TYPE g gauge\ng 5\n# a comment\n\nuntyped 7\n")
    merged = merge_families([("a", histogram), ("b", histogram)])
    lines = merged.splitlines()
    assert lines.count("# TYPE h histogram") == 1
    assert lines.count("# HELP g A gauge") == 1
    h_lines = lines[lines.index("# TYPE h histogram") + 1:lines.index("# HELP g A gauge")]
    assert h_lines == [
        'h_bucket{instance="a",le="1"} 1', 'h_bucket{instance="a",le="+Inf"} 2',
        'h_sum{instance="a"} 3', 'h_count{instance="a"} 2',
        'h_bucket{instance="b",le="1"} 1', 'h_bucket{instance="b",le="+Inf"} 2',
        'h_sum{instance="b"} 3', 'h_count{instance="b"} 2',
    ]
    assert re.search(r'^untyped\{instance="b"\} 7$', merged, re.MULTILINE)
    assert "# a comment" not in merged
    families = {f.name: f for f in text_string_to_metric_families(merged + "\n")}
    assert len(families["h"].samples) == 8


async def test_gateway_answers_are_counted_by_instance_and_status(
    make_settings: Any, make_app: Any, model: Path
) -> None:
    app: AppHarness = await make_app(make_settings())
    await create(app, "g", model)
    completion = {"model": "g", "prompt": "hi", "max_tokens": 2}
    for _ in range(2):
        assert (await app.client.post("/v1/completions", json=completion)).status_code == 200
    assert (await app.client.post("/v1/completions",
                                  json={"model": "made-up"})).status_code == 404
    assert (await app.client.get("/v1/models")).status_code == 200
    text = await scrape(app)
    assert value(text, 'llamactl_gateway_requests_total{instance="g",status="200"}') == 2
    # No label from a name a client made up: one series for every answer without an instance.
    assert value(text, 'llamactl_gateway_requests_total{instance="",status="404"}') == 1
    assert value(text, 'llamactl_gateway_requests_total{instance="",status="200"}') == 1
    assert "made-up" not in text
    assert value(text, 'llamactl_gateway_requests_in_flight{instance="g"}') == 0
