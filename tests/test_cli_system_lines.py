"""``llamactl system status`` in a table: the memory budget's lines and the Ray nodes'."""

from __future__ import annotations

from llamactl.cli.system import memory_lines, node_lines
from llamactl.client import ClusterNode, MemoryStatus

GIB = 2**30


def test_without_a_budget_only_the_claim_is_shown() -> None:
    memory = MemoryStatus.model_validate({
        "budget": {"ram": None, "vram": None}, "claimed": {"ram": GIB, "vram": 0},
        "free": {"ram": None, "vram": None}})
    assert memory_lines(memory) == ["claimed    RAM 1.0 GiB, VRAM 0 B"]


def test_with_a_budget_the_budget_and_what_is_free() -> None:
    memory = MemoryStatus.model_validate({
        "budget": {"ram": 8 * GIB, "vram": None}, "claimed": {"ram": GIB, "vram": 0},
        "free": {"ram": 7 * GIB, "vram": None}})
    assert memory_lines(memory) == ["claimed    RAM 1.0 GiB, VRAM 0 B",
                                    "budget     RAM 8.0 GiB", "free       RAM 7.0 GiB"]
    assert memory_lines(None) == []  # a server from before the field


def test_one_line_per_node() -> None:
    nodes = [ClusterNode.model_validate({
        "id": "a1b2c3d4e5f6a7b8", "address": "10.0.0.5", "alive": True,
        "resources": {"total": {"CPU": 8}, "available": {"CPU": 6}}, "instances": ["q", "g"]}),
        ClusterNode.model_validate({
            "id": "ffff", "address": "10.0.0.6", "alive": False,
            "resources": {"total": {}, "available": {}}, "instances": []})]
    assert node_lines(nodes) == ["node       10.0.0.5 alive a1b2c3d4e5f6: q, g",
                                 "node       10.0.0.6 dead ffff: no instances"]
    assert node_lines(None) == []
