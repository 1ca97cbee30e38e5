"""What a llama-server instance can do (issue 31): from its options and its GGUF metadata.

llama-server started with ``--embedding`` serves only embeddings, with ``--reranking`` only
rerank (llama.cpp makes it an embedding server with rank pooling); otherwise completions, and
chat where the model or the options give a chat template. Tool calls need the Jinja engine
(llama-server's default) and a template that renders ``tools``. ``--mmproj`` adds what the
projector's own metadata says it encodes (``clip.has_vision_encoder``,
``clip.has_audio_encoder``). The context is the instance's ``context_size``, else the
model's trained one (``<architecture>.context_length``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llamactl.backends.base import Machine, ModelAbilities, ordered
from llamactl.backends.llama_cpp.gguf_header import read_metadata
from llamactl.instances.models import InstanceSpec

_TEMPLATE = "tokenizer.chat_template"
_TOOL_TEMPLATE = "tokenizer.chat_template.tool_use"
_VISION, _AUDIO = "clip.has_vision_encoder", "clip.has_audio_encoder"


@dataclass(frozen=True)
class ModelCard:
    """What a model file's metadata says of what it can do."""

    context_length: int | None
    chat_template: bool
    tool_template: bool  # a template that renders the request's tools


@dataclass(frozen=True)
class ProjectorCard:
    vision: bool
    audio: bool


def read_model_card(path: Path) -> ModelCard:
    found = read_metadata(path, lambda key: key in (
        "general.architecture", _TEMPLATE, _TOOL_TEMPLATE) or key.endswith(".context_length"))
    architecture = found.get("general.architecture")
    context = found.get(f"{architecture}.context_length")
    template = found.get(_TEMPLATE)
    tools = (isinstance(template, str) and "tools" in template) or _TOOL_TEMPLATE in found
    return ModelCard(context if isinstance(context, int) and context > 0 else None,
                     isinstance(template, str) and bool(template), tools)


def read_projector_card(path: Path) -> ProjectorCard:
    found = read_metadata(path, lambda key: key in (_VISION, _AUDIO))
    # Projectors from before audio encoders carry neither key: they are vision projectors.
    return ProjectorCard(bool(found.get(_VISION, _AUDIO not in found)), bool(found.get(_AUDIO)))


def llama_cpp_abilities(spec: InstanceSpec, machine: Machine) -> ModelAbilities:
    card = machine.read_file(Path(spec.model_path), read_model_card)
    context = _option_int(spec, "context_size", "--ctx-size", "-c") or (
        card.context_length if card is not None else None)
    if _switch(spec, "reranking", "--reranking", "--rerank"):
        return ModelAbilities(context, ("rerank",))
    if _switch(spec, "embedding", "--embedding", "--embeddings"):
        return ModelAbilities(context, ("embedding",))
    found = {"completion"}
    given_template = any(name in spec.options for name in ("chat_template", "chat_template_file"))
    if given_template or card is None or card.chat_template:
        found.add("chat")
        jinja = spec.options.get("jinja") is not False and "--no-jinja" not in spec.extra_args
        if jinja and (given_template or card is None or card.tool_template):
            found.add("tools")
    found |= _projector_abilities(spec, machine)
    return ModelAbilities(context, ordered(found), known=card is not None)


def _projector_abilities(spec: InstanceSpec, machine: Machine) -> set[str]:
    projector = spec.options.get("mmproj")
    if not isinstance(projector, str):
        return set()
    card = machine.read_file(Path(projector), read_projector_card)
    if card is None:
        return {"vision"}  # unreadable here: the common kind
    return {name for name, has in (("vision", card.vision), ("audio", card.audio)) if has}


def _switch(spec: InstanceSpec, option: str, *flags: str) -> bool:
    return spec.options.get(option) is True or any(flag in spec.extra_args for flag in flags)


def _option_int(spec: InstanceSpec, option: str, *flags: str) -> int | None:
    value = spec.options.get(option)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    words = spec.extra_args
    for index, word in enumerate(words[:-1]):
        if word in flags and words[index + 1].isdigit() and int(words[index + 1]) > 0:
            return int(words[index + 1])
    return None
