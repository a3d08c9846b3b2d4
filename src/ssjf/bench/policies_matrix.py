"""What `ssjf bench policies` runs, as data: engine presets, policy specs, their oracles.

Adding a policy, an engine or a run setting to the matrix is one line here. A
policy is written ``SPEC[@FIELD=VALUE...]``: ``SPEC`` is a policy spec
(``ssjf:size=service``, ``ssjf:tail=1.1``) and each ``@FIELD=VALUE`` sets a
field of :class:`ssjf.bench.runner.PolicyEntry` (``srpt@preemption=trail``,
``ssjf@calibrate=true``), so run settings that other modules add to entries
plug in without this module knowing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ssjf.bench.runner import PolicyEntry, make_entry_policy
from ssjf.policies.base import setting_value
from ssjf.service import ServiceTime

#: KV blocks of a 7-8B fp16 model on ONE 24 GB GPU (the KV-bounded continuous engine):
#: KV per token = 2 (K, V) x 32 layers x 4096 hidden x 2 bytes = 0.5 MiB; 24 GiB - ~15 GiB
#: (13.5 GiB of weights + activations and the CUDA context) = ~9 GiB = 18,432 tokens =
#: 1,152 blocks of 16 tokens; 1,100 leaves vLLM's usual headroom. Every request of the
#: workloads fits alone (the longest needs ~9.4K tokens); together they contend.
KV_BLOCKS_24GB_7B = 1100


@dataclass(frozen=True, slots=True)
class EnginePreset:
    """An engine spec with the cost model it runs under, and why it is in the matrix."""

    name: str
    engine: str
    cost: str
    note: str


#: The matrix's engines. Every preset runs the default affine cost (a 7B-13B model on
#: one GPU, prefill priced per token), so long prompts cost what they cost everywhere.
ENGINE_PRESETS: dict[str, EnginePreset] = {
    p.name: p
    for p in (
        EnginePreset("serial", "serial", "affine", "no batching: one request at a time"),
        # Batches of 8 under the same KV budget as continuous-kv: a batch whose padded
        # context outgrows it is aborted and split (the batch engine's oom rule).
        EnginePreset(
            "batch",
            f"batch:8:kv={KV_BLOCKS_24GB_7B * 16}",
            "affine",
            f"request-level batches of 8 in {KV_BLOCKS_24GB_7B * 16:,} KV tokens (24 GB GPU, 7-8B)",
        ),
        EnginePreset("continuous", "continuous:32", "affine", "32 slots, ample KV (5,000 blocks)"),
        EnginePreset(
            "continuous-kv",
            f"continuous:64:blocks={KV_BLOCKS_24GB_7B}",
            "affine",
            f"64 slots bounded by KV memory: a 7-8B fp16 model on one 24 GB GPU "
            f"({KV_BLOCKS_24GB_7B} blocks of 16 tokens)",
        ),
    )
}


def engine_preset(text: str) -> EnginePreset:
    """A preset by name, or ``ENGINE_SPEC=COST_SPEC`` for any other engine."""
    text = text.strip()
    if text in ENGINE_PRESETS:
        return ENGINE_PRESETS[text]
    spec, eq, cost = text.partition("=")
    if not eq or not spec.strip() or not cost.strip():
        raise ValueError(
            f"engine {text!r}: use a preset ({', '.join(ENGINE_PRESETS)}) or ENGINE=COST "
            "(e.g. continuous:16=affine)"
        )
    from ssjf.sim import parse_cost_model, parse_engine

    parse_engine(spec), parse_cost_model(cost)  # bad specs fail here, before any work
    return EnginePreset(text, spec.strip(), cost.strip(), "given on the command line")


def default_policy() -> str:
    """The policy spec `ssjf simulate` and `ssjf serve` use by default."""
    import ssjf.policies as policies

    # The tail-safe default is declared by ssjf.policies; older builds had plain ssjf.
    return str(getattr(policies, "DEFAULT_POLICY", "ssjf"))


#: The policies every cell runs (FCFS and oracle SJF are always added: every row is
#: compared with them; so is the default policy, by :func:`matrix_policies`). One line
#: per policy; ``@preemption=`` rows run only on engines that can preempt and are
#: measured against oracle ``srpt`` under the same rule (added automatically). ``ltr``
#: is left out: on a point predictor its order is ssjf's.
POLICIES: tuple[str, ...] = (
    "fcfs",
    "sjf",
    "srpt",
    "ssjf",
    "ssrpt",
    "hrrn",
    "isrtf",
    "risk",
    "las",
    "mlfq",
    "sjf:size=service",
    "ssjf:size=service",
    "ssjf:calibrate=true",
    "ssrpt@preemption=on",
    "isrtf@preemption=on",
    "las@preemption=on",
    "mlfq@preemption=on",
)
#: The preset of --quick: the reference policies and one predicted, one guarded one.
QUICK_POLICIES: tuple[str, ...] = ("fcfs", "sjf", "ssjf", "srpt", "hrrn")
#: Entry fields a policy text may not set (the text itself sets them).
_OWN_FIELDS = frozenset({"label", "policy", "params", "estimates"})


def _preemption(text: str) -> Any:
    from ssjf.sim.preemption import parse_preemption

    return parse_preemption(text)


def _bool(text: str) -> bool:
    value = setting_value(text)
    if not isinstance(value, bool):
        raise ValueError(f"calibrate must be true or false, got {text!r}")
    return value


#: Entry fields whose text needs more than a number or a word.
_FIELD_PARSERS = {"preemption": _preemption, "calibrate": _bool}


@dataclass(frozen=True, slots=True)
class BenchPolicy:
    """One policy of the matrix: its text (the row's label), spec and entry fields."""

    text: str
    spec: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    #: PolicyEntry fields (e.g. preemption, calibrate) as written, by name.
    settings: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> BenchPolicy:
        """``SPEC[@FIELD=VALUE...]``; an unknown policy or field is a ValueError naming it."""
        from ssjf.policies import parse_policy_spec

        spec, *opts = [p.strip() for p in text.strip().split("@")]
        name, params = parse_policy_spec(spec)
        allowed = {f.name for f in fields(PolicyEntry)} - _OWN_FIELDS
        settings: dict[str, str] = {}
        for opt in opts:
            key, eq, value = opt.partition("=")
            key = key.strip().replace("-", "_")
            if not eq or not key or not value.strip():
                raise ValueError(f"policy {text!r}: entry settings are @FIELD=VALUE, got {opt!r}")
            if key not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise ValueError(
                    f"policy {text!r}: {key!r} is not a run setting of this build "
                    f"(PolicyEntry fields: {known})"
                )
            settings[key] = value.strip()
        if "calibrate" in params:  # `ssjf:calibrate=true`, as `ssjf simulate` spells it
            settings.setdefault("calibrate", str(params.pop("calibrate")).lower())
        bp = cls(text=text.strip(), spec=spec, name=name, params=params, settings=settings)
        bp.entry()  # bad field values fail here
        return bp

    @property
    def preemption(self) -> str | None:
        """The preemption rule in its canonical spelling (None: never preempts)."""
        from ssjf.sim.preemption import parse_preemption

        rule = parse_preemption(self.settings.get("preemption"))
        return None if rule is None else rule.spec

    @property
    def oracle(self) -> str:
        """The oracle this row's gain is measured against: sjf, or srpt with the same preemption."""
        return "sjf" if self.preemption is None else f"srpt@preemption={self.preemption}"

    def entry(self, label: str | None = None, estimates: str = "default") -> PolicyEntry:
        """The runner's entry (``label`` defaults to the text)."""
        extra = {k: _FIELD_PARSERS.get(k, setting_value)(v) for k, v in self.settings.items()}
        return PolicyEntry(
            label=label or self.text,
            policy=self.name,
            estimates=estimates,
            params=dict(self.params),
            **extra,
        )

    def with_params(self, **params: Any) -> BenchPolicy:
        """The same policy with settings changed (a value of None removes the setting)."""
        merged = {**self.params, **params}
        merged = {k: v for k, v in merged.items() if v is not None}
        spec = ":".join([self.name, *(f"{k}={_fmt(v)}" for k, v in merged.items())])
        text = "@".join([spec, *(f"{k}={v}" for k, v in self.settings.items())])
        return BenchPolicy(text, spec, self.name, merged, dict(self.settings))


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def matrix_policies(texts: tuple[str, ...] | list[str]) -> list[BenchPolicy]:
    """``texts`` parsed, with fcfs, sjf, srpt per preemption rule and the default policy added.

    Duplicates are dropped; every policy is built once, so bad settings fail here.
    """
    wanted = ["fcfs", "sjf", *texts, default_policy()]
    out: list[BenchPolicy] = []
    for text in wanted:
        bp = BenchPolicy.parse(text)
        if bp.preemption is not None and bp.oracle not in wanted:
            wanted.append(bp.oracle)  # preemptive rows are measured against preemptive srpt
        if all(p.text != bp.text for p in out):
            make_entry_policy(bp.entry(), ServiceTime(), truth=lambda r: 1.0)
            out.append(bp)
    return out
