"""The path policy for options that name files (security/file_options.py, issue 27) on the
vLLM and MLX tables, whose servers the suite does not run: the llama.cpp table is tested on
a real llamactl and llama-server in tests/security/test_file_options.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamactl.backends.mlx_lm import TABLE as MLX_TABLE
from llamactl.backends.vllm import TABLE as VLLM_TABLE
from llamactl.errors import ValidationFailed
from llamactl.security.file_options import FilePolicy, check_new_options, launch_problem


@pytest.fixture
def policy(tmp_path: Path) -> FilePolicy:
    (tmp_path / "models").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "config.yaml").write_text("auth: {}\n")
    return FilePolicy(tmp_path / "data", tmp_path / "etc" / "config.yaml", [tmp_path / "models"])


def test_the_tables_mark_what_names_a_file() -> None:
    assert {s.name for s in VLLM_TABLE.path_options} == {"download_dir", "chat_template"}
    assert {s.name for s in MLX_TABLE.path_options} == {"adapter_path", "draft_model"}


def test_a_vllm_template_is_text_unless_a_file_is_there(policy: FilePolicy,
                                                        tmp_path: Path) -> None:
    text = "{% for m in messages %}{{ m.content }}{% endfor %}"
    check_new_options(VLLM_TABLE, {"chat_template": text}, policy, admin=False)
    secret = tmp_path / "data" / "{x}"
    secret.parent.mkdir()
    secret.write_text("secret")
    for value in (str(secret), str(tmp_path / "elsewhere.jinja")):
        with pytest.raises(ValidationFailed) as caught:
            check_new_options(VLLM_TABLE, {"chat_template": value}, policy, admin=False)
        assert "options.chat_template" in str(caught.value.details)
    with pytest.raises(ValidationFailed, match="chat_template"):
        check_new_options(VLLM_TABLE, {"chat_template": str(secret)}, policy, admin=True)


def test_mlx_paths_follow_the_same_rules(policy: FilePolicy, tmp_path: Path) -> None:
    inside = str(tmp_path / "models" / "adapters")
    check_new_options(MLX_TABLE, {"adapter_path": inside}, policy, admin=False)
    for value in ("mlx-community/draft", str(tmp_path / "elsewhere")):  # a hub id too
        with pytest.raises(ValidationFailed, match="draft_model"):
            check_new_options(MLX_TABLE, {"draft_model": value}, policy, admin=False)
        check_new_options(MLX_TABLE, {"draft_model": value}, policy, admin=True)
    with pytest.raises(ValidationFailed) as caught:
        check_new_options(MLX_TABLE, {"adapter_path": str(tmp_path / "etc")}, policy,
                          admin=True)
    assert "config file's folder" in str(caught.value.details)
    empty = FilePolicy(policy.data_dir, policy.config_path, [])
    with pytest.raises(ValidationFailed) as caught:
        check_new_options(MLX_TABLE, {"adapter_path": inside}, empty, admin=False)
    assert "model_dirs is empty" in str(caught.value.details)


def test_a_launch_tells_an_admins_path_by_what_it_names(policy: FilePolicy,
                                                        tmp_path: Path) -> None:
    link = tmp_path / "models" / "adapters"
    link.symlink_to(tmp_path / "elsewhere")  # retargeted after the create
    assert "outside instances.model_dirs" in str(
        launch_problem(MLX_TABLE, {"adapter_path": str(link)}, policy))
    assert launch_problem(MLX_TABLE, {"adapter_path": str(tmp_path / "elsewhere")},
                          policy) is None  # named outside: only an admin could set it
    assert "data dir" in str(
        launch_problem(VLLM_TABLE, {"download_dir": str(tmp_path / "data" / "hf")}, policy))
