"""The running backends' own ``/metrics`` (llama-server runs with ``--metrics``), relabelled.

Each instance's samples get an ``instance="name"`` label, and the families of all instances
are merged so that each ``# HELP``/``# TYPE`` appears once, followed by all its samples, as
the text format requires. The parsing is minimal on purpose: a sample line is a metric name,
an optional ``{labels}`` and the rest; the label goes in right after the name, so label
values are never parsed.

``llamactl_backend_scrape_success{instance}`` says which backends answered (1) or not (0).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 2.0  # seconds per backend; all are scraped concurrently
# Suffixes whose samples belong to the family named without them (histograms, summaries).
_FAMILY_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created", "_gcount", "_gsum")


@dataclass(frozen=True)
class ScrapeTarget:
    name: str  # the instance
    port: int
    api_key: str
    host: str = "127.0.0.1"  # the instance's backend_host: its Ray node's address (issue 18)


@dataclass
class _Family:
    comments: dict[str, str] = field(default_factory=dict)  # "HELP"/"TYPE" -> its line
    samples: list[str] = field(default_factory=list)


async def scrape_backends(http: httpx.AsyncClient, targets: Sequence[ScrapeTarget]) -> str:
    """All targets' metrics, relabelled and merged; an empty string without targets."""
    if not targets:
        return ""
    texts = await asyncio.gather(*(_fetch(http, target) for target in targets))
    answered = [(t.name, text) for t, text in zip(targets, texts, strict=True) if text is not None]
    status = ["# HELP llamactl_backend_scrape_success Whether the backend's /metrics answered",
              "# TYPE llamactl_backend_scrape_success gauge"]
    status += [f'llamactl_backend_scrape_success{{instance="{escape_label(t.name)}"}} '
               f"{0 if text is None else 1}" for t, text in zip(targets, texts, strict=True)]
    merged = merge_families(answered)
    return "\n".join(status) + "\n" + (merged + "\n" if merged else "")


async def _fetch(http: httpx.AsyncClient, target: ScrapeTarget) -> str | None:
    url = f"http://{target.host}:{target.port}/metrics"
    try:
        answer = await http.get(url, headers={"Authorization": f"Bearer {target.api_key}"},
                                timeout=SCRAPE_TIMEOUT)
    except httpx.HTTPError as exc:
        log.debug("metrics of %s: %s", target.name, exc)
        return None
    if answer.status_code != 200:
        log.debug("metrics of %s: HTTP %s", target.name, answer.status_code)
        return None
    return answer.text


def merge_families(sources: Iterable[tuple[str, str]]) -> str:
    """``(instance, text)`` pairs -> one text, each family's comments once, then its samples."""
    families: dict[str, _Family] = {}
    for instance, text in sources:
        current: str | None = None  # the family named by the last HELP/TYPE line
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    current = parts[2]
                    families.setdefault(current, _Family()).comments.setdefault(parts[1], line)
                continue  # other comments carry nothing
            name = _sample_name(line)
            owner = current if current is not None and _belongs(name, current) else name
            families.setdefault(owner, _Family()).samples.append(add_label(line, instance))
    lines: list[str] = []
    for family in families.values():
        lines += [family.comments[kind] for kind in ("HELP", "TYPE") if kind in family.comments]
        lines += family.samples
    return "\n".join(lines)


def _sample_name(line: str) -> str:
    end = len(line)
    for stop in ("{", " "):
        index = line.find(stop)
        if index != -1:
            end = min(end, index)
    return line[:end]


def _belongs(sample: str, family: str) -> bool:
    return sample == family or any(sample == family + suffix for suffix in _FAMILY_SUFFIXES)


def add_label(line: str, instance: str) -> str:
    """``name{a="b"} 1`` -> ``name{instance="x",a="b"} 1``, ``name 1`` -> ``name{instance="x"} 1``:
    the label goes first, so the rest of the line, label values included, is left as it is."""
    label = f'instance="{escape_label(instance)}"'
    name = _sample_name(line)
    rest = line[len(name):]
    if rest.startswith("{"):
        inner = rest[1:]
        return f"{name}{{{label}{'' if inner.startswith('}') else ','}{inner}"
    return f"{name}{{{label}}}{rest}"


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
