"""One adapter per engine family, in one registry: adding a convention is one file here."""

from ssjf.gateway.backends import fifo as _fifo  # noqa: F401  (registers the built-ins)
from ssjf.gateway.backends import sglang as _sglang  # noqa: F401
from ssjf.gateway.backends import vllm as _vllm  # noqa: F401
from ssjf.gateway.backends.base import (
    BackendAdapter,
    available_backends,
    make_backend,
    register_backend,
)

__all__ = ["BackendAdapter", "available_backends", "make_backend", "register_backend"]
