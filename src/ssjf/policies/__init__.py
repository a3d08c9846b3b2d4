"""Scheduling policies: orderings of waiting requests, in one registry."""

from ssjf.policies import builtin as _builtin  # noqa: F401  (registers the built-ins)
from ssjf.policies.base import (
    Policy,
    TruthLookup,
    available_policies,
    make_policy,
    parse_policy_spec,
    policy_class,
    register_policy,
)

__all__ = [
    "Policy",
    "TruthLookup",
    "available_policies",
    "make_policy",
    "parse_policy_spec",
    "policy_class",
    "register_policy",
]
