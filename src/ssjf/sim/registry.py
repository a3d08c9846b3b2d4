"""Engine models and cost models by name: a decorator to add one, a spec parser per kind.

A spec string names a registered entry and gives its arguments:
``continuous:32:blocks=800`` (engine ``continuous``, arguments ``32`` and
``blocks=800``), ``table:llama2-70b/a100-80gb/8`` (cost ``table``, argument
``llama2-70b/a100-80gb/8``). An entry is any class with a ``usage`` line for
the help text and a ``from_spec`` classmethod; a model class may be its own
entry, and a model may have several (``paper`` and ``affine`` both build an
``AffineCost``). Adding an engine or cost model is one file: the class, its
``from_spec`` and ``@register_engine("name")`` / ``@register_cost("name")``,
plus one import line in ``ssjf/sim/engines/__init__.py`` or
``ssjf/sim/parse.py`` so that it registers.

Help texts and errors list what is registered (``engine_help``, ``cost_help``);
importing ``ssjf.sim`` loads numpy, so the CLI asks for them only when shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from ssjf.registry import Registry

if TYPE_CHECKING:
    from ssjf.sim.cost import CostModel
    from ssjf.sim.engines.base import Engine

C = TypeVar("C", bound=type)


class EngineEntry(Protocol):
    """A registered engine name: ``parse_engine`` calls ``from_spec(spec, args)``."""

    #: How to write the spec in help texts, e.g. ``("batch:B[:timeout=S][:group]",)``.
    usage: ClassVar[tuple[str, ...]]

    @classmethod
    def from_spec(cls, spec: str, args: list[str]) -> Engine:
        """The engine for ``spec``, whose ``:``-separated arguments are ``args``."""
        ...


class CostEntry(Protocol):
    """A registered cost-model name: ``parse_cost_model`` calls ``from_spec(spec, arg)``."""

    usage: ClassVar[tuple[str, ...]]

    @classmethod
    def from_spec(cls, spec: str, arg: str) -> CostModel:
        """The cost model for ``spec``; ``arg`` is everything after the first ``:`` ("" if none)."""
        ...


#: ``spec_name`` on each class holds the name it is registered under.
ENGINES: Registry[type[EngineEntry]] = Registry("engine", "spec_name")
COSTS: Registry[type[CostEntry]] = Registry("cost model", "spec_name")


def register_engine(name: str) -> Callable[[C], C]:
    """Class decorator adding an engine spec name (the class has ``usage`` and ``from_spec``)."""
    return ENGINES.register(name)


def register_cost(name: str) -> Callable[[C], C]:
    """Class decorator adding a cost-model spec name (the class has ``usage`` and ``from_spec``)."""
    return COSTS.register(name)


def _usage(registry: Registry[type[EngineEntry]] | Registry[type[CostEntry]]) -> str:
    return " | ".join(f"'{u}'" for cls in registry.as_dict().values() for u in cls.usage)


def engine_help() -> str:
    """The engine specs every registered engine accepts, for help texts and errors."""
    return f"engine specs: {_usage(ENGINES)}"


def cost_help() -> str:
    """The cost specs every registered cost model accepts, for help texts and errors."""
    return f"cost specs: {_usage(COSTS)}"
