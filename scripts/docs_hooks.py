"""MkDocs hooks (mkdocs.yml): the pages generated from the code at each build.

- reference/configuration.md, from the settings model;
- user-guide/api-reference.md, from the app's OpenAPI document (where the seed's API
  reference lives, so that its links resolve);
- the import-layer diagram in architecture.md (at ``<!-- layers -->``), from tests/test_layers.py;
- the default config file in running.md (at ``<!-- config-defaults -->``), from the settings.

Nothing generated is committed, so none of it can drift from the code.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from llamactl.devtools.docs_reference import (
    api_reference,
    configuration_reference,
    default_config_yaml,
)

ROOT = Path(__file__).resolve().parent.parent


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, "reference/configuration.md",
                                content=configuration_reference()))
    files.append(File.generated(config, "user-guide/api-reference.md", content=api_reference()))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files,
                     **_: Any) -> str:
    if "<!-- layers -->" in markdown:
        markdown = markdown.replace("<!-- layers -->", layers_diagram())
    if "<!-- config-defaults -->" in markdown:
        markdown = markdown.replace("<!-- config-defaults -->", default_config_yaml())
    return markdown


def layers_diagram() -> str:
    """The layers of tests/test_layers.py as a Mermaid flowchart, highest on top."""
    spec = importlib.util.spec_from_file_location("test_layers", ROOT / "tests" / "test_layers.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    layers: list[set[str]] = module.LAYERS
    lines = ["```mermaid", "flowchart TB"]
    for index in reversed(range(len(layers))):
        lines.append(f"  subgraph L{index}[layer {index}]")
        lines.append("    direction LR")
        lines += [f'    {_node(unit)}["{unit}"]' for unit in sorted(layers[index])]
        lines.append("  end")
    lines += [f"  L{index + 1} --> L{index}" for index in reversed(range(len(layers) - 1))]
    lines.append("```")
    return "\n".join(lines)


def _node(unit: str) -> str:
    return "u_" + re.sub(r"\W", "_", unit)
