"""Help that says what goes after an option, not which Python type parses it.

Recent Typer releases print each parameter's Python annotation in ``--help``
(``--load <float>``, ``--data <list[str]>``, ``--strict <bool>``). This module
replaces that, once for every command, with the usual command-line metavars:
nothing after a flag, ``N`` for counts, ``FILE`` or ``DIR`` for paths,
``SECONDS``, ``MS``, ``FILE``, ``URL`` or ``DIR`` where the option's name ends
so (``--max-wait-s``, ``--api-keys-file``, ``--engine-url``), ``NUMBER`` for
other numbers, and the option's own name (``--model MODEL``, the argparse
convention) for other text. An option that names its own ``metavar``
(``SPEC``, ``LOADS``, ``SECONDS``) keeps it.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from typer.core import TyperArgument, TyperGroup

#: Path options that name a directory, by long-option name (the rest are files).
_DIR_OPTIONS = frozenset({"plot", "out", "export"})
#: Metavars by the end of an option's name, for text and numbers: a unit or a kind.
_BY_SUFFIX = (("-ms", "MS"), ("-s", "SECONDS"), ("file", "FILE"), ("url", "URL"), ("dir", "DIR"))


def _long_name(param: Any) -> str:
    """``--target-model`` -> ``target-model``; the parameter's name when it has no long option."""
    longs = [o[2:] for o in getattr(param, "opts", ()) if o.startswith("--")]
    return longs[0] if longs else str(param.name or "value")


def value_name(param: Any) -> str:
    """The metavar shown after ``param`` in help ("" for a flag, which takes no value)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    name = _long_name(param)
    desc = getattr(param, "type_descriptor", None)  # Typer >= 0.20; older ones print TEXT etc.
    if desc is None:
        return name.upper().replace("-", "_")
    if desc.is_path:
        kind = desc.path_type  # "file" | "dir" | "path", from file_okay / dir_okay
        if kind == "dir" or (kind == "path" and (name in _DIR_OPTIONS or name.endswith("dir"))):
            return "DIR"
        return "FILE"
    annotation = desc.annotation
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    if annotation is int:
        return "N"
    for suffix, metavar in _BY_SUFFIX:
        if name.endswith(suffix):
            return metavar
    if annotation is float:
        return "NUMBER"
    return name.upper().replace("-", "_")


class _NamedArgument(TyperArgument):
    """A positional argument shown by its name alone (``PREDICTOR_DIR``), with no type column."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def clean_metavars(command: Any, ctx: Any) -> None:
    """Give every parameter of ``command`` (its ``--help`` included) a metavar; idempotent."""
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = str(param.name or "value").upper()
            # Typer builds the parameter objects; swapping in a subclass that only
            # overrides how the type is displayed is the one hook it leaves.
            param.__class__ = _NamedArgument
        elif getattr(param, "is_flag", False) or param.metavar is None:
            param.metavar = value_name(param)


class CleanHelpGroup(TyperGroup):
    """A command group whose commands (and itself) show metavars instead of Python types."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            clean_metavars(command, ctx)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        clean_metavars(self, ctx)
        super().format_help(ctx, formatter)


__all__ = ["CleanHelpGroup", "clean_metavars", "value_name"]
