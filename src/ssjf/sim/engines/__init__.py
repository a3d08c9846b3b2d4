"""Engine models: serial, request-level batch, continuous (fast and step reference).

Each engine spec name (``serial``, ``batch:8``, ``continuous:32``) is an entry in
``ssjf.sim.registry.ENGINES``; a new engine model is one file here with
``@register_engine("name")`` plus its import line below.
"""

from __future__ import annotations

from ssjf.sim.engines.base import Engine, RunContext
from ssjf.sim.engines.batch import BatchEngine
from ssjf.sim.engines.continuous import ContinuousEngine
from ssjf.sim.engines.continuous_config import ContinuousParams
from ssjf.sim.engines.magnus import MagnusEngine
from ssjf.sim.engines.serial import SerialEngine
from ssjf.sim.engines.step_reference import StepContinuousEngine
from ssjf.sim.registry import ENGINES, engine_help, register_engine

__all__ = [
    "BatchEngine",
    "ContinuousEngine",
    "ContinuousParams",
    "Engine",
    "MagnusEngine",
    "RunContext",
    "SerialEngine",
    "StepContinuousEngine",
    "engine_help",
    "parse_engine",
    "register_engine",
]

#: Options of ``continuous:N[:key=value...]`` -> ContinuousParams fields.
_CONT_KEYS = {"tokens": "max_num_batched_tokens", "block": "block_size", "blocks": "num_kv_blocks"}


def _int(spec: str, what: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"engine spec {spec!r}: {what} must be an integer, got {text!r}") from None


# The built-in engines' spec entries. They sit here rather than beside each engine
# class only to keep the engine files about serving; a new engine may register
# its own class (``usage`` + ``from_spec`` + ``@register_engine``) in its file.


@register_engine("serial")
class _Serial:
    usage = ("serial",)

    @classmethod
    def from_spec(cls, spec: str, args: list[str]) -> Engine:
        if args:
            raise ValueError(f"engine spec {spec!r}: 'serial' takes no arguments")
        return SerialEngine()


@register_engine("batch")
class _Batch:
    usage = ("batch:B[:timeout=S][:group][:kv=T][:oom=keep]",)

    @classmethod
    def from_spec(cls, spec: str, args: list[str]) -> Engine:
        if not args:
            raise ValueError(f"engine spec {spec!r}: give the batch size, e.g. 'batch:8'")
        timeout = 0.0
        group = False
        kv = None
        oom = "restart"
        for opt in args[1:]:
            key, _, value = opt.partition("=")
            if key == "group" and not value:
                group = True
                continue
            if key == "kv":
                kv = _int(spec, "kv", value)
                continue
            if key == "oom":
                oom = value
                continue
            if key != "timeout":
                raise ValueError(
                    f"engine spec {spec!r}: unknown option {key!r} (timeout=S, group, kv=T, oom=R)"
                )
            try:
                timeout = float(value)
            except ValueError:
                raise ValueError(f"engine spec {spec!r}: timeout must be a number") from None
        return BatchEngine(_int(spec, "the batch size", args[0]), timeout, group, kv, oom)


def _continuous_kwargs(spec: str, args: list[str]) -> dict[str, int]:
    kwargs: dict[str, int] = {}
    if args:
        kwargs["max_num_seqs"] = _int(spec, "max_num_seqs", args[0])
    for opt in args[1:]:
        key, _, value = opt.partition("=")
        if key not in _CONT_KEYS:
            known = ", ".join(f"{k}=" for k in _CONT_KEYS)
            raise ValueError(f"engine spec {spec!r}: unknown option {key!r} ({known})")
        kwargs[_CONT_KEYS[key]] = _int(spec, key, value)
    if "max_num_seqs" in kwargs and "max_num_batched_tokens" not in kwargs:
        kwargs["max_num_batched_tokens"] = max(2048, kwargs["max_num_seqs"])
    return kwargs


@register_engine("continuous")
class _Continuous:
    usage = ("continuous:N[:tokens=T][:block=K][:blocks=M]",)

    @classmethod
    def from_spec(cls, spec: str, args: list[str]) -> Engine:
        return ContinuousEngine(**_continuous_kwargs(spec, args))


@register_engine("continuous-step")
class _ContinuousStep:
    usage = ("continuous-step:N[...] (reference)",)

    @classmethod
    def from_spec(cls, spec: str, args: list[str]) -> Engine:
        return StepContinuousEngine(**_continuous_kwargs(spec, args))


@register_engine("magnus")
class _Magnus:
    usage = ("magnus:KV_TOKENS[:max=B][:band=R][:margin=F][:window=N][:oom=keep]",)

    @classmethod
    def from_spec(cls, spec: str, args: list[str]) -> Engine:
        if not args or not args[0]:
            raise ValueError(
                f"engine spec {spec!r}: give the KV budget in tokens, e.g. 'magnus:16384'"
            )
        kwargs: dict[str, int | float | str] = {"kv_tokens": _int(spec, "the KV budget", args[0])}
        for opt in args[1:]:
            key, _, value = opt.partition("=")
            if key in ("max", "window"):
                kwargs["max_batch" if key == "max" else key] = _int(spec, key, value)
            elif key == "oom":
                kwargs["oom"] = value
            elif key in ("band", "margin"):
                try:
                    kwargs[key] = float(value)
                except ValueError:
                    raise ValueError(f"engine spec {spec!r}: {key} must be a number") from None
            else:
                known = "max=B, band=R, margin=F, window=N, oom=R"
                raise ValueError(f"engine spec {spec!r}: unknown option {key!r} ({known})")
        return MagnusEngine(**kwargs)  # type: ignore[arg-type]


def parse_engine(spec: str) -> Engine:
    """Build an engine from a spec string such as ``batch:8:timeout=2`` or ``continuous:32``."""
    parts = [p.strip() for p in spec.strip().split(":")]
    kind, args = parts[0].lower(), parts[1:]
    if kind not in ENGINES:
        raise ValueError(f"unknown engine {kind!r}; {engine_help()}")
    try:
        return ENGINES.get(kind).from_spec(spec, args)
    except ValueError as exc:
        if str(exc).startswith("engine spec"):
            raise
        raise ValueError(f"engine spec {spec!r}: {exc}") from None
