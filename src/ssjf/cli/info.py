"""`ssjf policies`: list the registered scheduling policies."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ssjf.cli.app import app
from ssjf.policies import available_policies


@app.command("policies")
def policies_cmd() -> None:
    """List the registered scheduling policies."""
    table = Table(title="ssjf policies")
    table.add_column("name")
    table.add_column("reads true lengths")
    table.add_column("description")
    for name, cls in sorted(available_policies().items()):
        table.add_row(name, "yes (oracle)" if cls.oracle else "no", cls.description)
    Console().print(table)
