"""One registry pattern for every kind of plug-in: a decorator to add a class, a lookup by name.

Policies, predictor families and gateway backends each keep a ``Registry``;
adding one is one file with ``@register_x("name")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)
C = TypeVar("C", bound=type)


class Registry(Generic[T]):
    """Classes of one kind by name; ``attr`` on each class holds its registered name."""

    def __init__(self, kind: str, attr: str, error: type[Exception] = ValueError) -> None:
        self.kind = kind
        self.attr = attr
        self.error = error
        self._classes: dict[str, T] = {}

    def register(self, name: str) -> Callable[[C], C]:
        """Class decorator adding a class under ``name`` (again for the same class is a no-op)."""

        def deco(cls: C) -> C:
            known = self._classes.get(name)
            if known is not None and known is not cls:
                raise self.error(f"{self.kind} {name!r} is already registered")
            setattr(cls, self.attr, name)
            self._classes[name] = cls  # type: ignore[assignment]
            return cls

        return deco

    def get(self, name: str) -> T:
        """The class registered as ``name``; an error listing the known names otherwise."""
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(sorted(self._classes))
            raise self.error(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def as_dict(self) -> dict[str, T]:
        """A copy: name -> class."""
        return dict(self._classes)
