"""Checks of policy settings: one clear ValueError naming the policy and the setting."""

from __future__ import annotations

import math
from typing import Any

from ssjf.service import ServiceTime


def number(policy: str, setting: str, value: Any, *, minimum: float, strict: bool) -> float:
    """``value`` as a finite float ``> minimum`` (``strict``) or ``>= minimum``, else a ValueError."""
    real = isinstance(value, int | float) and not isinstance(value, bool)
    if real and math.isfinite(value) and (value > minimum or (not strict and value == minimum)):
        return float(value)
    op = ">" if strict else ">="
    raise ValueError(
        f"policy {policy!r}: setting {setting!r} must be a number {op} {minimum:g}, got {value!r}"
    )


def optional_seconds(policy: str, setting: str, value: object) -> float | None:
    """A duration >= 0, or None (also spelled ``none`` / ``off`` in a spec) for "never"."""
    if value is None or (isinstance(value, str) and value.lower() in ("none", "off")):
        return None
    return number(policy, setting, value, minimum=0.0, strict=False)


def service_setting(policy: str, service: object) -> ServiceTime:
    """``service`` checked (a ``ServiceTime``; None = the paper's rates), or a ValueError naming it."""
    if service is None:
        return ServiceTime()
    if not isinstance(service, ServiceTime):
        raise ValueError(
            f"policy {policy!r}: setting 'service' must be a ServiceTime (callers pass it), "
            f"got {service!r}"
        )
    return service
