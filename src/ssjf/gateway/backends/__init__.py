"""One adapter per engine family: how a scheduled request is forwarded."""

from ssjf.gateway.backends.base import BackendAdapter, make_backend

__all__ = ["BackendAdapter", "make_backend"]
