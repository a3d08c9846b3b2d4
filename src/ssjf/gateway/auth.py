"""Who is calling: gateway API keys, tenants, and which clients may send a priority tier.

Keys come from ``api_keys`` (each its own tenant, untrusted) and from
``api_keys_file``, a TOML or JSON file::

    [[keys]]
    key = "sk-team-a-..."        # or key_sha256 = "<hex>" to keep no plain key on disk
    tenant = "team-a"
    trusted = true               # may send a priority tier (body field `priority`)
    weight = 2.0                 # share of capacity against other tenants

Without keys every request is accepted; the tenant is then read from
``tenant_header`` (if configured) and nobody is trusted.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssjf.gateway.config import ConfigError, GatewayConfig, read_config_file
from ssjf.gateway.errors import GatewayError

#: Tenant names reach metric labels and logs: short, printable.
_TENANT_OK = re.compile(r"[^A-Za-z0-9._:@/-]")
MAX_TENANT_CHARS = 64


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as far as scheduling is concerned."""

    tenant: str | None = None
    #: May set a priority tier ahead of the policy's order.
    trusted: bool = False
    #: Relative share of capacity when tenants compete.
    weight: float = 1.0


ANONYMOUS = Principal()


def clean_tenant(name: str) -> str:
    """A tenant name safe for labels and logs."""
    return _TENANT_OK.sub("_", name)[:MAX_TENANT_CHARS] or "_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def unauthorized(message: str = "invalid or missing API key") -> GatewayError:
    return GatewayError(
        401,
        message,
        "invalid_request_error",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


class KeyStore:
    """API keys by their SHA-256 (a lookup costs one hash, whatever the number of keys)."""

    def __init__(self, principals: dict[str, Principal], tenant_header: str | None) -> None:
        self._by_digest = principals
        self.tenant_header = tenant_header.lower() if tenant_header else None

    @property
    def enabled(self) -> bool:
        """Whether requests must carry a key."""
        return bool(self._by_digest)

    @property
    def weights(self) -> dict[str, float]:
        """Configured weight of each keyed tenant."""
        return {p.tenant: p.weight for p in self._by_digest.values() if p.tenant is not None}

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> KeyStore:
        principals: dict[str, Principal] = {}
        for i, key in enumerate(cfg.api_keys):
            if not key:
                raise ConfigError(f"api_keys[{i}] is empty")
            principals[_digest(key)] = Principal(tenant=f"key{i}")
        if cfg.api_keys_file is not None:
            principals.update(_read_keys_file(cfg.api_keys_file))
        return cls(principals, cfg.tenant_header)

    def authenticate(self, headers: Any) -> Principal:
        """The caller of a request with these headers; 401 when keys are on and it has none."""
        if not self._by_digest:
            if self.tenant_header is not None:
                name = headers.get(self.tenant_header)
                if name:
                    return Principal(tenant=clean_tenant(name))
            return ANONYMOUS
        return self.check(headers)

    def check(self, headers: Any) -> Principal:
        """The principal of a valid key in ``Authorization: Bearer`` (or 401)."""
        auth = headers.get("authorization")
        if not auth:
            raise unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("malformed Authorization header: expected 'Bearer <key>'")
        principal = self._by_digest.get(_digest(token.strip()))
        if principal is None:
            raise unauthorized()
        return principal


def _read_keys_file(path: str) -> dict[str, Principal]:
    p = Path(path)
    if p.suffix.lower() in (".json", ".toml"):
        data = read_config_file(p)
    else:
        raise ConfigError(f"{p}: api_keys_file must be .toml or .json")
    entries = data.get("keys")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{p}: expected a non-empty list 'keys' ([[keys]] tables)")
    out: dict[str, Principal] = {}
    for i, e in enumerate(entries):
        where = f"{p}: keys[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(e) - {"key", "key_sha256", "tenant", "trusted", "weight"}
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        key, digest = e.get("key"), e.get("key_sha256")
        if (key is None) == (digest is None):
            raise ConfigError(f"{where}: give exactly one of 'key' or 'key_sha256'")
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigError(f"{where}: 'key' must be a non-empty string")
        if digest is not None and not (
            isinstance(digest, str) and re.fullmatch(r"[0-9a-fA-F]{64}", digest)
        ):
            raise ConfigError(f"{where}: 'key_sha256' must be 64 hex digits")
        tenant = e.get("tenant")
        if not isinstance(tenant, str) or not tenant:
            raise ConfigError(f"{where}: 'tenant' must be a non-empty string")
        trusted = e.get("trusted", False)
        weight = e.get("weight", 1.0)
        if not isinstance(trusted, bool):
            raise ConfigError(f"{where}: 'trusted' must be true or false")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise ConfigError(f"{where}: 'weight' must be a number > 0")
        d = digest.lower() if isinstance(digest, str) else _digest(str(key))
        if d in out:
            raise ConfigError(f"{where}: the same key appears twice")
        out[d] = Principal(tenant=clean_tenant(tenant), trusted=trusted, weight=float(weight))
    return out
