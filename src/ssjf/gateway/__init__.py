"""The OpenAI-compatible SSJF gateway (needs the extra: pip install 'ssjf[gateway]').

Importing this package stays light; ``create_app`` pulls in FastAPI and httpx.
"""

from ssjf.gateway.config import ConfigError, GatewayConfig, load_config

__all__ = ["ConfigError", "GatewayConfig", "create_app", "load_config"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from ssjf.gateway.app import create_app

        return create_app
    raise AttributeError(name)
