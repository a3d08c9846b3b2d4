"""Scheduling policies: orderings of waiting requests, in one registry."""

from ssjf.policies import builtin as _builtin  # noqa: F401  (registers the built-ins)
from ssjf.policies import isrtf as _isrtf  # noqa: F401
from ssjf.policies import las as _las  # noqa: F401
from ssjf.policies import mlfq as _mlfq  # noqa: F401
from ssjf.policies import rank as _rank  # noqa: F401
from ssjf.policies import risk as _risk  # noqa: F401
from ssjf.policies.base import (
    Policy,
    TruthLookup,
    available_policies,
    make_policy,
    parse_policy_spec,
    policy_class,
    register_policy,
)

#: The policy `ssjf simulate`, `ssjf demo` and `ssjf serve` use by default: speculative
#: SJF under a tail budget (ssjf.queue): no request is overtaken by more than 7% of
#: the larger of its FCFS work and the recent p99 of FCFS work. 1.07 is the largest
#: budget whose p99 JCT stayed within 1.1x FCFS's with a real (tfidf) predictor,
#: since mispredicted requests overtake more than they are charged (tuned on the demo's
#: held-out AlpacaEval split, serial engine, load 0.9, seeds 0-2; docs/simulator.md).
#: Sized by predicted service time (prefill + decode), which equals the token order
#: where prefill is free and wins where prompts are long (docs/results.md).
DEFAULT_POLICY = "ssjf:size=service:tail=1.07"

__all__ = [
    "DEFAULT_POLICY",
    "Policy",
    "TruthLookup",
    "available_policies",
    "make_policy",
    "parse_policy_spec",
    "policy_class",
    "register_policy",
]
