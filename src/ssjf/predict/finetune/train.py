"""The fine-tuning loop: AdamW, linear warmup/decay, dynamic padding, early stopping.

Deterministic on CPU for a given seed (shuffling from a seeded numpy generator,
``torch.manual_seed`` for dropout and the head's initialisation). Uses CUDA when
``device="auto"`` finds it, with bf16 autocast (fp16 + a grad scaler on GPUs
without bf16). On CPU it never changes ``torch.get_num_threads()`` unless
``threads`` is given.

When only the top layers train (``train_layers`` < the encoder's depth) and the
encoder is BERT-like, the frozen part runs once per example and its hidden
states are cached (float16 on CPU to halve memory); the cache is memoised per
process, so the next formulation trained on the same texts skips it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ssjf.predict.finetune.formulations import Formulation
from ssjf.predict.finetune.model import LengthModel, is_bert_like, num_layers


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Optimisation settings; defaults sized for MiniLM-L6 on a few thousand prompts on a CPU."""

    epochs: int = 4  # early stopping on held-out prompts usually ends it sooner
    batch_size: int = 32  # also the list size of the pairwise/listwise losses
    lr: float = 3e-4  # encoder layers: higher than full fine-tuning since few layers move
    head_lr: float = 3e-3  # the freshly initialised head learns faster
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of the steps with a linearly rising rate
    max_grad_norm: float = 1.0
    train_layers: int = 2  # top layers that train (<= 0 or >= depth: all of them)
    val_fraction: float = 0.1  # prompts held out for early stopping (0: none)
    evals_per_epoch: int = 2  # validation checks per epoch (early stopping granularity)
    patience: int = 2  # checks without improvement before stopping
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    threads: int | None = None  # torch CPU threads; None leaves torch's setting alone
    progress: bool = False


@dataclass(slots=True)
class TrainResult:
    """What happened: steps run, losses, the best validation loss and wall time."""

    steps: int = 0
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_val: float | None = None
    stopped_early: bool = False
    cached: bool = False
    device: str = "cpu"
    seconds: float = 0.0
    #: the trained model's raw outputs on every example (train and validation), for calibration
    outputs: np.ndarray | None = None


def pick_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def split_groups(groups: Sequence[Any], fraction: float, seed: int) -> np.ndarray:
    """Boolean validation mask: whole groups (prompts) go to validation, never single records."""
    uniq = sorted({str(g) for g in groups})
    n_val = round(len(uniq) * fraction)
    if fraction <= 0 or len(uniq) < 10 or n_val == 0:
        return np.zeros(len(groups), dtype=bool)
    rng = np.random.default_rng(seed)
    val = {uniq[i] for i in rng.permutation(len(uniq))[:n_val]}
    return np.array([str(g) in val for g in groups])


def _batches(
    lengths: np.ndarray, idx: np.ndarray, batch: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Index batches of similar lengths (little padding); shuffled when ``rng`` is given."""
    idx = idx.copy()
    if rng is None:
        order = idx[np.argsort(lengths[idx], kind="stable")]
        return [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(idx)
    chunk = batch * 8  # sort within chunks: batches stay random but dense
    out: list[np.ndarray] = []
    for c in range(0, len(idx), chunk):
        part = idx[c : c + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        out.extend(part[i : i + batch] for i in range(0, len(part), batch))
    rng.shuffle(out)
    return out


def pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists to the longest: (input_ids, attention_mask)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def _pad_hidden(states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(s.shape[0] for s in states)
    out = torch.zeros((len(states), width, states[0].shape[1]), dtype=torch.float32)
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        out[i, : s.shape[0]] = s.float()
        mask[i, : s.shape[0]] = 1
    return out, mask


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


_CACHE: dict[str, list[torch.Tensor]] = {}


def _cache_key(tag: str, cut: int, ids: Sequence[Sequence[int]]) -> str:
    h = hashlib.sha1(f"{tag}|{cut}".encode())
    for s in ids:
        h.update(np.asarray(s, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()


def lower_states(
    model: LengthModel,
    ids: Sequence[Sequence[int]],
    cut: int,
    pad_id: int,
    device: torch.device,
    batch: int,
    tag: str = "",
    progress: Callable[[int], None] | None = None,
) -> list[torch.Tensor]:
    """Frozen-part hidden states of each sequence (memoised per process on ``tag``)."""
    key = _cache_key(tag, cut, ids) if tag else ""
    if key and key in _CACHE:
        return _CACHE[key]
    lengths = np.array([len(s) for s in ids])
    states: list[torch.Tensor | None] = [None] * len(ids)
    store = torch.float16 if device.type == "cpu" else torch.float32
    model.eval()
    with torch.no_grad():
        for b in _batches(lengths, np.arange(len(ids)), batch * 2, None):
            x, m = pad([ids[i] for i in b], pad_id)
            with _autocast(device):
                h = model.lower(x.to(device), m.to(device), cut)
            for j, i in enumerate(b):
                states[i] = h[j, : lengths[i]].to("cpu", store)
            if progress:
                progress(len(b))
    result = [s for s in states if s is not None]
    if key:
        _CACHE.clear()  # keep one entry: memory is bounded by one dataset's states
        _CACHE[key] = result
    return result


def train(
    model: LengthModel,
    form: Formulation,
    ids: Sequence[Sequence[int]],
    targets: np.ndarray,
    groups: Sequence[Any],
    pad_id: int,
    config: TrainConfig,
    cache_tag: str = "",
) -> TrainResult:
    """Fine-tune ``model`` in place on (ids, targets); restores the best validation state."""
    t0 = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = pick_device(config.device)
    model.to(device)
    depth = num_layers(model.encoder)
    n_train = config.train_layers if 0 < config.train_layers < depth else depth
    cut = depth - n_train
    use_cache = cut > 0 and is_bert_like(model.encoder)
    if cut > 0:
        model.freeze_below(cut)
    result = TrainResult(cached=use_cache, device=str(device))

    val_mask = split_groups(groups, config.val_fraction, config.seed)
    tr_idx, va_idx = np.flatnonzero(~val_mask), np.flatnonzero(val_mask)
    lengths = np.array([len(s) for s in ids])
    tgt = torch.as_tensor(targets, dtype=torch.float32)
    steps_per_epoch = math.ceil(len(tr_idx) / config.batch_size)
    total = max(steps_per_epoch * config.epochs, 1)

    with _progress(config.progress) as bar:
        states: list[torch.Tensor] | None = None
        if use_cache:
            task = bar.add_task("encoding (frozen layers)", total=len(ids))
            states = lower_states(
                model, ids, cut, pad_id, device, config.batch_size, cache_tag,
                progress=lambda n: bar.advance(task, n),
            )  # fmt: skip

        def run(batch_idx: np.ndarray) -> torch.Tensor:
            if states is not None:
                h, m = _pad_hidden([states[i] for i in batch_idx])
                return model.upper(h.to(device), m.to(device), cut)
            x, m = pad([ids[i] for i in batch_idx], pad_id)
            return model(x.to(device), m.to(device))

        enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(
            [
                {"params": enc_params, "lr": config.lr},
                {"params": list(model.head.parameters()), "lr": config.head_lr},
            ],
            weight_decay=config.weight_decay,
        )
        warm = max(int(total * config.warmup), 1)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(total - warm, 1)))
        )
        scaler = torch.amp.GradScaler("cuda", enabled=_needs_scaler(device))
        check_every = max(steps_per_epoch // max(config.evals_per_epoch, 1), 1)
        best_state: dict[str, torch.Tensor] | None = None
        bad = 0
        task = bar.add_task(f"fine-tuning ({form.name})", total=total)
        for _epoch in range(config.epochs):
            for b in _batches(lengths, tr_idx, config.batch_size, rng):
                model.train()
                with _autocast(device):
                    out = run(b)
                loss = form.loss(out.float(), tgt[b].to(device))
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(
                    [p for g in opt.param_groups for p in g["params"]], config.max_grad_norm
                )
                scaler.step(opt)
                scaler.update()
                sched.step()
                result.steps += 1
                result.train_loss.append(float(loss.detach()))
                bar.advance(task)
                if len(va_idx) and result.steps % check_every == 0:
                    v = _val_loss(model, form, run, lengths, va_idx, tgt, config, device)
                    result.val_loss.append(v)
                    if result.best_val is None or v < result.best_val:
                        result.best_val, bad = v, 0
                        best_state = _trainable_state(model)
                    else:
                        bad += 1
                        if bad >= config.patience:
                            result.stopped_early = True
                            break
            if result.stopped_early:
                break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.eval()
    # Outputs on every example for the calibration; the cached path only reruns the top.
    rows: list[np.ndarray] = [np.zeros(0)] * len(ids)
    with torch.no_grad():
        for b in _batches(lengths, np.arange(len(ids)), config.batch_size * 2, None):
            with _autocast(device):
                res_np = run(b).float().cpu().numpy()
            for j, i in enumerate(b):
                rows[i] = res_np[j]
    result.outputs = np.stack(rows).astype(np.float64)
    result.seconds = time.perf_counter() - t0
    return result


def _val_loss(model, form, run, lengths, va_idx, tgt, config, device) -> float:  # type: ignore[no-untyped-def]
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        # Fixed shuffled batches so ranking losses see mixed lists, the same every check.
        for b in _batches(lengths, va_idx, config.batch_size, np.random.default_rng(1)):
            with _autocast(device):
                out = run(b)
            total += float(form.loss(out.float(), tgt[b].to(device))) * len(b)
            n += len(b)
    return total / max(n, 1)


def _trainable_state(model: LengthModel) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: copy.deepcopy(v.detach()) for k, v in model.state_dict().items() if k in names}


def _needs_scaler(device: torch.device) -> bool:
    return device.type == "cuda" and not torch.cuda.is_bf16_supported()


def predict_outputs(
    model: LengthModel,
    ids: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
    batch: int = 64,
) -> np.ndarray:
    """Raw head outputs (float64 numpy, one row per sequence), batched by length."""
    model.eval()
    model.to(device)
    lengths = np.array([len(s) for s in ids])
    rows: list[np.ndarray | None] = [None] * len(ids)
    with torch.no_grad():
        for b in _batches(lengths, np.arange(len(ids)), batch, None):
            x, m = pad([ids[i] for i in b], pad_id)
            with _autocast(device):
                out = model(x.to(device), m.to(device)).float().cpu().numpy()
            for j, i in enumerate(b):
                rows[i] = out[j]
    return np.stack([r for r in rows if r is not None]).astype(np.float64)


class _NullBar:
    def add_task(self, *_a: Any, **_k: Any) -> int:
        return 0

    def advance(self, *_a: Any, **_k: Any) -> None:
        return None


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield _NullBar()
        return
    from rich.errors import LiveError
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        bar.start()
    except LiveError:  # a caller's live display (e.g. `ssjf train`'s spinner) owns the terminal
        yield _NullBar()
        return
    try:
        yield bar
    finally:
        bar.stop()
