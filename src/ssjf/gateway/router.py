"""Upstream replicas and routing by least predicted outstanding work."""

from __future__ import annotations

import time
from collections.abc import Sequence


class Replica:
    """One engine replica and what the gateway has sent it."""

    __slots__ = ("down_until", "in_flight", "index", "max_in_flight", "outstanding", "url")

    def __init__(self, url: str, index: int, max_in_flight: int | None) -> None:
        self.url = url
        self.index = index
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        #: Sum of predicted remaining tokens of the requests in flight here.
        self.outstanding = 0.0
        #: Monotonic time before which the router avoids this replica (it failed to connect).
        self.down_until = 0.0

    @property
    def has_slot(self) -> bool:
        return self.max_in_flight is None or self.in_flight < self.max_in_flight


class Router:
    """Chooses a replica with a free slot and the least predicted outstanding work.

    Outstanding work is the sum over in-flight requests of their predicted
    remaining tokens (decremented as a stream delivers tokens): a replica
    busy with one long generation is worse than one running three short ones.
    Ties go to fewer requests in flight, then to the lower index.
    """

    def __init__(self, urls: Sequence[str], max_in_flight: int | None, cooldown_s: float) -> None:
        self.replicas = [Replica(u, i, max_in_flight) for i, u in enumerate(urls)]
        self.cooldown_s = cooldown_s
        self._single = self.replicas[0] if len(self.replicas) == 1 else None

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    def has_slot(self) -> bool:
        """Whether some replica can take a request now."""
        return any(r.has_slot for r in self.replicas)

    def pick(self) -> Replica | None:
        """The replica for the next request, or None when every replica is full."""
        single = self._single
        if single is not None:
            return single if single.has_slot else None
        now = time.monotonic()
        best: Replica | None = None
        best_key: tuple[bool, float, int, int] | None = None
        for r in self.replicas:
            if not r.has_slot:
                continue
            # Replicas that just failed to connect sort last, but are still used when
            # nothing else has a slot: the request then fails fast instead of waiting.
            key = (r.down_until > now, r.outstanding, r.in_flight, r.index)
            if best_key is None or key < best_key:
                best, best_key = r, key
        return best

    def mark_down(self, replica: Replica) -> None:
        """Avoid ``replica`` for a while (a connection to it failed)."""
        replica.down_until = time.monotonic() + self.cooldown_s
