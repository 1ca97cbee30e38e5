"""Write a tiny random-weight llama GGUF model for tests and quick starts.

Tests of llamactl need a real model that a real ``llama-server`` loads in well
under a second, without downloading anything.  This module writes one: a
2-layer, 64-wide "llama" with a SentencePiece-style vocabulary of a few hundred
pieces, ChatML control tokens and a ChatML chat template.  The weights are
random but shaped so that replies are short: the residual stream is dominated
by the current token's embedding, a "." is sampled now and then, and after a
"." the model almost surely ends the turn with ``<|im_end|>`` (the EOS token).
Mean pooling is declared so ``llama-server --embedding`` serves /v1/embeddings.

The same seed always gives a byte-identical file.

Usage::

    python -m llamactl.devtools.tiny_model OUT.gguf [--seed N]
"""

from __future__ import annotations

import argparse
import pathlib
import string
from dataclasses import dataclass

import gguf
import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]

N_LAYERS = 2
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 128
N_CTX = 2048
RMS_EPS = 1e-5
ROPE_FREQ_BASE = 10000.0

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

SPACE = "\u2581"  # SentencePiece's visible space, "▁"
STOP_PIECE = "."
# fmt: off
_WORDS = (
    "the", "a", "an", "and", "of", "to", "in", "is", "it", "you", "I", "we", "that", "this",
    "hello", "hi", "world", "yes", "no", "ok", "model", "tiny", "llama", "test", "server",
    "token", "reply", "chat", "answer", "random", "word", "text", "good", "day", "how", "are",
)
# fmt: on
_PUNCTUATION = (".", ",", "!", "?", "'", "-", ":", ";")

# Residual-stream dimensions reserved for hand-set features (see _token_embedding).
_STOP_DIM = 0  # large after STOP_PIECE, negative elsewhere: drives the EOS logit
_BIAS_DIM = 1  # constant for every token: acts as a per-token output bias


@dataclass(frozen=True)
class Vocab:
    """A SentencePiece-style ("llama") vocabulary and its special token ids."""

    pieces: list[str]
    scores: list[float]
    types: list[int]
    unk: int
    bos: int
    eos: int
    im_start: int
    im_end: int
    stop: int

    @property
    def normal_ids(self) -> list[int]:
        return [i for i, t in enumerate(self.types) if t == gguf.TokenType.NORMAL]


def _normal_pieces() -> list[str]:
    """Plain pieces; every word comes with all its prefixes so SPM merges can reach it."""
    pieces = [SPACE, *string.ascii_lowercase, *string.digits, *_PUNCTUATION]
    pieces += [SPACE + c for c in string.ascii_lowercase]
    for word in _WORDS:
        pieces += [SPACE + word[:n] for n in range(1, len(word) + 1)]
    return list(dict.fromkeys(pieces))


def build_vocab() -> Vocab:
    """<unk>, <s>, </s>, the 256 byte-fallback tokens, ChatML controls, then plain pieces."""
    tt = gguf.TokenType
    head = [("<unk>", tt.UNKNOWN), ("<s>", tt.CONTROL), ("</s>", tt.CONTROL)]
    head += [(f"<0x{b:02X}>", tt.BYTE) for b in range(256)]
    head += [("<|im_start|>", tt.CONTROL), ("<|im_end|>", tt.CONTROL)]
    normal = _normal_pieces()
    pieces = [p for p, _ in head] + normal
    scores = [0.0] * len(head) + [-float(rank) for rank in range(len(normal))]
    types = [int(t) for _, t in head] + [int(tt.NORMAL)] * len(normal)
    ids = {p: i for i, p in enumerate(pieces)}
    return Vocab(
        pieces=pieces,
        scores=scores,
        types=types,
        unk=ids["<unk>"],
        bos=ids["<s>"],
        eos=ids["<|im_end|>"],
        im_start=ids["<|im_start|>"],
        im_end=ids["<|im_end|>"],
        stop=ids[STOP_PIECE],
    )


def _normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> Matrix:
    return rng.normal(0.0, std, size=shape).astype(np.float32)


@dataclass(frozen=True)
class Shape:
    """The model's size. The default is the 2-layer test model; a bigger one (more layers,
    wider) makes memory differences visible (bench/memory.py, tests/test_memory_*)."""

    n_layers: int = N_LAYERS
    n_embd: int = N_EMBD
    n_ff: int = N_FF


def _token_embedding(rng: np.random.Generator, vocab: Vocab, n_embd: int = N_EMBD) -> Matrix:
    emb = _normal(rng, (len(vocab.pieces), n_embd), 1.0)
    emb[:, _STOP_DIM] = -1.0
    emb[vocab.stop, _STOP_DIM] = 8.0
    emb[:, _BIAS_DIM] = 2.0
    return emb


def _output(rng: np.random.Generator, vocab: Vocab, n_embd: int = N_EMBD) -> Matrix:
    """LM head: random over plain pieces, EOS only after STOP_PIECE, never other specials."""
    out = _normal(rng, (len(vocab.pieces), n_embd), 0.1)
    out[:, _STOP_DIM] = 0.0
    out[:, _BIAS_DIM] = 0.0
    special = [i for i, t in enumerate(vocab.types) if t != gguf.TokenType.NORMAL]
    out[special, _BIAS_DIM] = -10.0
    out[vocab.eos, :] = 0.0
    out[vocab.eos, _STOP_DIM] = 4.0
    out[vocab.stop, _BIAS_DIM] = 0.6
    return out


def _layer(rng: np.random.Generator, bid: int, shape: Shape) -> dict[str, Matrix]:
    """One transformer block with small weights, so embeddings dominate the residual."""
    n_embd, n_ff = shape.n_embd, shape.n_ff
    kv_width = n_embd // N_HEAD * N_HEAD_KV
    shapes = {
        "attn_q": (n_embd, n_embd),
        "attn_k": (kv_width, n_embd),
        "attn_v": (kv_width, n_embd),
        "attn_output": (n_embd, n_embd),
        "ffn_gate": (n_ff, n_embd),
        "ffn_up": (n_ff, n_embd),
        "ffn_down": (n_embd, n_ff),
    }
    ones = np.ones(n_embd, dtype=np.float32)
    tensors = {"attn_norm": ones, "ffn_norm": ones.copy()}
    tensors |= {name: _normal(rng, shape, 0.02) for name, shape in shapes.items()}
    return {f"blk.{bid}.{name}": t for name, t in tensors.items()}


def build_tensors(vocab: Vocab, seed: int, shape: Shape = Shape()) -> dict[str, Matrix]:
    """All tensors by GGUF name (numpy shapes are the reverse of ggml's)."""
    rng = np.random.default_rng(seed)
    tensors = {"token_embd.weight": _token_embedding(rng, vocab, shape.n_embd)}
    for bid in range(shape.n_layers):
        tensors |= {f"{k}.weight": v for k, v in _layer(rng, bid, shape).items()}
    tensors["output_norm.weight"] = np.ones(shape.n_embd, dtype=np.float32)
    tensors["output.weight"] = _output(rng, vocab, shape.n_embd)
    return tensors


def _add_hparams(writer: gguf.GGUFWriter, n_vocab: int, shape: Shape) -> None:
    writer.add_name("llamactl-tiny-test")
    writer.add_description("Random weights for tests; outputs are gibberish.")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(n_vocab)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layers)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(shape.n_embd // N_HEAD)
    writer.add_rope_freq_base(ROPE_FREQ_BASE)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    # Only read in --embedding mode; lets /v1/embeddings work without --pooling.
    writer.add_pooling_type(gguf.PoolingType.MEAN)


def _add_tokenizer(writer: gguf.GGUFWriter, vocab: Vocab) -> None:
    writer.add_tokenizer_model("llama")
    writer.add_token_list(vocab.pieces)
    writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.types)
    writer.add_unk_token_id(vocab.unk)
    writer.add_bos_token_id(vocab.bos)
    writer.add_eos_token_id(vocab.eos)
    writer.add_pad_token_id(vocab.unk)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)


def write_tiny_model(
    path: pathlib.Path, *, seed: int = 0, shape: Shape = Shape()
) -> pathlib.Path:
    """Write the tiny model to ``path`` (parents created) and return ``path``."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab()
    writer = gguf.GGUFWriter(path, "llama")
    try:
        _add_hparams(writer, len(vocab.pieces), shape)
        _add_tokenizer(writer, vocab)
        for name, tensor in build_tensors(vocab, seed, shape).items():
            writer.add_tensor(name, tensor)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=pathlib.Path, help="where to write the .gguf file")
    parser.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    parser.add_argument("--layers", type=int, default=N_LAYERS, help="block count")
    parser.add_argument("--embd", type=int, default=N_EMBD, help="width (a multiple of 4)")
    parser.add_argument("--ff", type=int, default=N_FF, help="feed-forward width")
    args = parser.parse_args(argv)
    shape = Shape(args.layers, args.embd, args.ff)
    path = write_tiny_model(args.out, seed=args.seed, shape=shape)
    print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
