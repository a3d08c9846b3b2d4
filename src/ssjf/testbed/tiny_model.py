"""A tiny randomly initialised Llama plus a locally trained tokenizer, built offline.

Serving speed does not depend on weight values, so a random model exercises a
real engine (scheduling, batching, streaming, token counts) without a download.
The tokenizer is a byte-level BPE trained here on a fixed English corpus (the
Python standard library's docstrings), wrapped in ``PreTrainedTokenizerFast``
with a chat template so ``/v1/chat/completions`` works too.

This module runs under any Python that has ``torch``, ``transformers`` and
``tokenizers``; the engine fixture runs it with the engine's own interpreter
(``python -m ssjf.testbed.tiny_model OUT_DIR``) so the files match the
``transformers`` version that will load them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

#: Bump when the files a build writes change; cache directories are keyed by it.
BUILD_VERSION = 1

#: The chat template: one tagged block per message, then the assistant's tag.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ("<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")

#: Standard-library modules whose docstrings make the tokenizer's training corpus:
#: plain English prose that every Python install has, so builds need no data files.
_CORPUS_MODULES = (
    "argparse",
    "asyncio",
    "collections",
    "csv",
    "dataclasses",
    "datetime",
    "email",
    "functools",
    "http.client",
    "json",
    "logging",
    "pathlib",
    "random",
    "statistics",
    "string",
    "subprocess",
    "textwrap",
    "typing",
    "unittest",
    "urllib.request",
)


@dataclass(frozen=True, slots=True)
class TinyModelConfig:
    """Shape of the tiny model; defaults follow ENGINES.md's recipe."""

    #: Hidden size 256, 2 layers, 4 heads: loads in vLLM's CPU build in seconds
    #: and generates a few hundred tokens/s on 2 cores.
    hidden_size: int = 256
    intermediate_size: int = 512
    num_layers: int = 2
    num_heads: int = 4
    #: A 4k BPE vocabulary: English prompts take somewhat more tokens than with a
    #: 32k vocabulary, which keeps prompt sizes realistic for the engine.
    vocab_size: int = 4096
    #: Positions for --max-model-len up to 16k: tests use very long requests to
    #: hold a slot for seconds (a step of this model takes about a millisecond).
    max_position_embeddings: int = 65536
    #: Seed for the random weights (the tokenizer's training is deterministic).
    seed: int = 0

    @property
    def key(self) -> str:
        """A short hash naming this build (config + build version + Python minor)."""
        blob = json.dumps(
            {"v": BUILD_VERSION, "py": sys.version_info[:2], **asdict(self)}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _corpus() -> list[str]:
    """English paragraphs from standard-library docstrings (deterministic per Python)."""
    import importlib
    import inspect

    texts: list[str] = []
    for name in _CORPUS_MODULES:
        mod = importlib.import_module(name)
        doc = inspect.getdoc(mod)
        if doc:
            texts.append(doc)
        for attr in sorted(vars(mod)):
            obj = getattr(mod, attr)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and not attr.startswith("_"):
                d = inspect.getdoc(obj)
                if d:
                    texts.append(d)
    return texts


def build_tokenizer(out_dir: Path, vocab_size: int) -> int:
    """Train a byte-level BPE tokenizer, save it with a chat template; return its size."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import PreTrainedTokenizerFast
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "building the tiny model needs tokenizers and transformers: "
            "pip install 'ssjf[finetune]' (or use the engine's venv)"
        ) from exc

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 1 << 20
    fast.save_pretrained(str(out_dir))
    return int(tok.get_vocab_size())


def build_tiny_model(out_dir: str | Path, config: TinyModelConfig | None = None) -> Path:
    """Write a random Llama and its tokenizer into ``out_dir`` (created); return it."""
    cfg = config or TinyModelConfig()
    try:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "building the tiny model needs torch and transformers: pip install 'ssjf[finetune]'"
        ) from exc

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = build_tokenizer(out, cfg.vocab_size)
    special = {t: i for i, t in enumerate(SPECIAL_TOKENS)}  # trainer puts them first
    torch.manual_seed(cfg.seed)
    llama_cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=special["<s>"],
        eos_token_id=special["</s>"],
        pad_token_id=special["<pad>"],
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(llama_cfg)  # float32, the default dtype
    model.save_pretrained(str(out), safe_serialization=True)
    (out / "ssjf_tiny_model.json").write_text(
        json.dumps({"build_version": BUILD_VERSION, "key": cfg.key, **asdict(cfg)}, indent=2)
    )
    return out


def default_cache_root() -> Path:
    """Where cached builds live: $SSJF_CACHE_DIR/tiny-model or ~/.cache/ssjf/tiny-model."""
    root = os.environ.get("SSJF_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "ssjf"
    return base / "tiny-model"


def is_built(model_dir: Path) -> bool:
    """True when ``model_dir`` holds a finished build (its marker file is written last)."""
    return (model_dir / "ssjf_tiny_model.json").is_file()


def cached_tiny_model(
    cache_root: str | Path | None = None, config: TinyModelConfig | None = None
) -> Path:
    """Return a built tiny model under ``cache_root``, building it once (atomically)."""
    cfg = config or TinyModelConfig()
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    target = root / cfg.key
    if is_built(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a crash never leaves a half model
    # that a later run would take for a finished one.
    tmp = Path(tempfile.mkdtemp(prefix=f".{cfg.key}-", dir=root))
    try:
        build_tiny_model(tmp, cfg)
        try:
            tmp.rename(target)
        except OSError:
            if not is_built(target):  # somebody else won the race with a good build
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m ssjf.testbed.tiny_model [--cache] DIR``: build (or reuse) a model."""
    args = list(sys.argv[1:] if argv is None else argv)
    use_cache = "--cache" in args
    args = [a for a in args if a != "--cache"]
    if len(args) != 1:
        print("usage: python -m ssjf.testbed.tiny_model [--cache] DIR", file=sys.stderr)
        return 2
    path = cached_tiny_model(args[0]) if use_cache else build_tiny_model(args[0])
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
