"""What a pull asks for, resolved against the Hugging Face Hub: the repo's commit and the
files to fetch, each with its size and LFS SHA-256 (issue 33).

A source is llama.cpp's ``-hf`` shorthand, ``<user>/<repo>[:<quant>]``, or a repo with a file
and a revision. The quant picks the file as llama.cpp (``common/download.cpp``) picks it: the
first GGUF model file (not a projector, a split model's first part) whose path holds the tag
followed by ``.`` or ``-``, case-insensitively; with no tag, Q4_K_M, then Q4_0, then the first
model file. A split model comes whole (every part); the repo's projector comes when asked.

Spoken with PyPI ``huggingface_hub`` (its ``HfApi.model_info``: the Hub's protocol, its token
handling, ``HF_ENDPOINT``); blocking, so called off the event loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from llamactl.errors import HubUnavailable, NotFound, ValidationFailed
from llamactl.library.gguf_info import SPLIT_NAME

REPO_ID = r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}"
SHORTHAND = re.compile(rf"^(?P<repo>{REPO_ID})(?::(?P<tag>[\w.-]{{1,64}}))?$")
REPO = re.compile(rf"^{REPO_ID}$")
DEFAULT_TAGS = ("Q4_K_M", "Q4_0")
HUB_TIMEOUT = 30.0  # seconds for the Hub's answer about a repo


@dataclass(frozen=True)
class PullSource:
    """What was asked for: ``tag`` from a shorthand, or ``file`` named outright."""

    text: str  # as the user wrote it, for the job's answer
    repo: str
    revision: str = "main"
    tag: str | None = None
    file: str | None = None
    with_mmproj: bool = False

    @classmethod
    def parse(cls, source: str | None, repo: str | None, file: str | None,
              revision: str | None, with_mmproj: bool = False) -> PullSource:
        if source is not None:
            if repo is not None or file is not None:
                raise ValidationFailed("Give source, or repo and file, not both",
                                       "source: <user>/<repo>[:<quant>]")
            match = SHORTHAND.match(source.strip())
            if match is None:
                raise ValidationFailed("source must be <user>/<repo>[:<quant>]",
                                       f"source: '{source}' is not <user>/<repo>[:<quant>]")
            return cls(text=source.strip(), repo=match["repo"], tag=match["tag"],
                       revision=revision or "main", with_mmproj=with_mmproj)
        if repo is None or not REPO.match(repo):
            raise ValidationFailed("repo must be <user>/<repo>", "repo: <user>/<repo> expected")
        if file is not None and (file.startswith("/") or ".." in file.split("/")):
            raise ValidationFailed("file must be a path inside the repo", f"file: '{file}'")
        text = f"{repo}/{file}" if file else repo
        return cls(text=text, repo=repo, file=file, revision=revision or "main",
                   with_mmproj=with_mmproj)


@dataclass(frozen=True)
class HubFile:
    name: str  # the path in the repo
    size: int
    sha256: str | None  # LFS files only; small git files have none


@dataclass(frozen=True)
class Resolved:
    repo: str
    commit: str  # the revision's commit: every file is fetched at it
    files: tuple[HubFile, ...]  # the model's parts in order, then its projector if asked

    @property
    def model_file(self) -> str:
        return self.files[0].name


def resolve(source: PullSource, endpoint: str, token: str | None) -> Resolved:
    """The commit and files ``source`` names on the Hub at ``endpoint``. Blocking."""
    siblings, commit = _repo_files(source, endpoint, token)
    ggufs = {name: item for name, item in siblings.items() if name.lower().endswith(".gguf")}
    chosen = _chosen_file(source, siblings, ggufs)
    names = _split_parts(chosen, ggufs)
    if source.with_mmproj:
        projector = _projector(chosen, ggufs, source.tag)
        if projector is not None:
            names.append(projector)
    return Resolved(repo=source.repo, commit=commit,
                    files=tuple(siblings[name] for name in names))


def _repo_files(source: PullSource, endpoint: str,
                token: str | None) -> tuple[dict[str, HubFile], str]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    api = HfApi(endpoint=endpoint.rstrip("/"), token=token or None)
    try:
        info = api.model_info(source.repo, revision=source.revision, files_metadata=True,
                              timeout=HUB_TIMEOUT)
    except GatedRepoError:
        raise HubUnavailable(f"{source.repo} is gated: accept its terms on the Hub",
                             "and set models.hub_token or HF_TOKEN") from None
    except RevisionNotFoundError:
        raise NotFound(f"Revision '{source.revision}' not found in {source.repo}",
                       f"repo: {source.repo}") from None
    except RepositoryNotFoundError:
        raise NotFound(f"Repository '{source.repo}' not found on the Hub",
                       "a private or gated repo needs models.hub_token or HF_TOKEN") from None
    except Exception as error:  # any other answer, or none (httpx2's errors are their own)
        raise HubUnavailable("The Hub did not answer", _hub_problem(error)) from None
    siblings = {item.rfilename: _hub_file(item) for item in info.siblings or ()}
    return siblings, str(info.sha or source.revision)


def _hub_file(item: Any) -> HubFile:
    lfs = item.lfs
    sha = lfs.sha256 if lfs is not None else None
    size = lfs.size if lfs is not None else item.size
    return HubFile(name=item.rfilename, size=int(size or 0), sha256=sha)


def _hub_problem(error: BaseException) -> str:
    # The first line only: huggingface_hub's messages may carry a request id, never a token.
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


def is_model_file(name: str) -> bool:
    """A GGUF model, as llama.cpp counts them: not a projector, a split's first part only."""
    base = name.rsplit("/", 1)[-1].lower()
    if not base.endswith(".gguf") or "mmproj" in base:
        return False
    split = SPLIT_NAME.match(base)
    return split is None or int(split["part"]) == 1


def _chosen_file(source: PullSource, siblings: dict[str, HubFile],
                 ggufs: dict[str, HubFile]) -> str:
    if source.file is not None:
        if source.file not in siblings:
            raise NotFound(f"No file '{source.file}' in {source.repo}",
                           f"GGUF files: {', '.join(sorted(ggufs)[:20]) or 'none'}")
        if not source.file.lower().endswith(".gguf"):
            raise ValidationFailed("Only GGUF files can be pulled", f"file: '{source.file}'")
        return _first_part(source.file, ggufs)
    models = sorted(name for name in ggufs if is_model_file(name))
    found = pick_model_file(models, source.tag)
    if found is not None:
        return found
    raise NotFound(f"No GGUF model {'for ' + source.tag if source.tag else ''} in "
                   f"{source.repo}".replace("  ", " "),
                   f"GGUF files: {', '.join(models[:20]) or 'none'}")


def pick_model_file(names: list[str], tag: str | None) -> str | None:
    """The file llama.cpp's ``-hf repo:tag`` picks among ``names``; None: none fits."""
    models = [name for name in names if is_model_file(name)]
    for wanted in (tag,) if tag else DEFAULT_TAGS:
        pattern = re.compile(re.escape(wanted) + r"[.-]", re.I)
        found = next((name for name in models if pattern.search(name)), None)
        if found is not None:
            return found
    return models[0] if tag is None and models else None


def _first_part(name: str, ggufs: dict[str, HubFile]) -> str:
    folder, _, base = name.rpartition("/")
    split = SPLIT_NAME.match(base)
    if split is None:
        return name
    first = f"{split['base']}-00001-of-{split['count']}.gguf"
    return f"{folder}/{first}" if folder else first


def _split_parts(chosen: str, ggufs: dict[str, HubFile]) -> list[str]:
    folder, _, base = chosen.rpartition("/")
    split = SPLIT_NAME.match(base)
    if split is None:
        return [chosen]
    count = int(split["count"])
    prefix = f"{folder}/" if folder else ""
    parts = [f"{prefix}{split['base']}-{n:05d}-of-{split['count']}.gguf"
             for n in range(1, count + 1)]
    missing = [part for part in parts if part not in ggufs]
    if missing:
        raise NotFound(f"The repo lacks parts of the split model {chosen}",
                       f"missing: {', '.join(missing[:10])}")
    return parts


def _projector(chosen: str, ggufs: dict[str, HubFile], tag: str | None) -> str | None:
    """The repo's projector for ``chosen``: one in its folder (else anywhere), preferring
    the same quant, then F16, then the first by name."""
    folder = chosen.rpartition("/")[0]
    projectors = sorted(name for name in ggufs if "mmproj" in name.rsplit("/", 1)[-1].lower())
    near = [name for name in projectors if name.rpartition("/")[0] == folder] or projectors
    for wanted in (tag, "f16"):
        if wanted:
            found = next((name for name in near if wanted.lower() in name.lower()), None)
            if found is not None:
                return found
    return near[0] if near else None
