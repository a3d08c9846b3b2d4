"""Engine models: serial, request-level batch, continuous (fast and step reference)."""

from __future__ import annotations

from ssjf.sim.engines.base import Engine, RunContext
from ssjf.sim.engines.batch import BatchEngine
from ssjf.sim.engines.continuous import ContinuousEngine
from ssjf.sim.engines.continuous_config import ContinuousParams
from ssjf.sim.engines.serial import SerialEngine
from ssjf.sim.engines.step_reference import StepContinuousEngine

__all__ = [
    "BatchEngine",
    "ContinuousEngine",
    "ContinuousParams",
    "Engine",
    "RunContext",
    "SerialEngine",
    "StepContinuousEngine",
    "parse_engine",
]

_HELP = (
    "engine specs: 'serial' | 'batch:B[:timeout=S][:group]' | "
    "'continuous:N[:tokens=T][:block=K][:blocks=M]' | 'continuous-step:N[...]' (reference)"
)
_CONT_KEYS = {"tokens": "max_num_batched_tokens", "block": "block_size", "blocks": "num_kv_blocks"}


def _int(spec: str, what: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"engine spec {spec!r}: {what} must be an integer, got {text!r}") from None


def parse_engine(spec: str) -> Engine:
    """Build an engine from a spec string such as ``batch:8:timeout=2`` or ``continuous:32``."""
    parts = [p.strip() for p in spec.strip().split(":")]
    kind, args = parts[0].lower(), parts[1:]
    try:
        if kind == "serial":
            if args:
                raise ValueError(f"engine spec {spec!r}: 'serial' takes no arguments")
            return SerialEngine()
        if kind == "batch":
            if not args:
                raise ValueError(f"engine spec {spec!r}: give the batch size, e.g. 'batch:8'")
            timeout = 0.0
            group = False
            for opt in args[1:]:
                key, _, value = opt.partition("=")
                if key == "group" and not value:
                    group = True
                    continue
                if key != "timeout":
                    raise ValueError(
                        f"engine spec {spec!r}: unknown option {key!r} (timeout=S, group)"
                    )
                try:
                    timeout = float(value)
                except ValueError:
                    raise ValueError(f"engine spec {spec!r}: timeout must be a number") from None
            return BatchEngine(_int(spec, "the batch size", args[0]), timeout, group)
        if kind in ("continuous", "continuous-step"):
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
            cls = ContinuousEngine if kind == "continuous" else StepContinuousEngine
            return cls(**kwargs)
    except ValueError as exc:
        if str(exc).startswith("engine spec"):
            raise
        raise ValueError(f"engine spec {spec!r}: {exc}") from None
    raise ValueError(f"unknown engine {kind!r}; {_HELP}")
