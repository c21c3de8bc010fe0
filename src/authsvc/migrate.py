"""Running Alembic from code: `authsvc migrate`, `authsvc dev` start-up and the tests.

Alembic itself is imported only to migrate. Whether a database is at head (/readyz,
`authsvc check-config`, `authsvc serve`'s start-up check and background workers) is answered
without it: importing alembic (and Mako, and Pygments through it) was ~0.2-0.4 s of every
`authsvc serve` start (issue 12, row 10). ``script_heads`` reads the revision identifiers
from the scripts' source; tests/test_migrations.py checks that it agrees with alembic's
``ScriptDirectory``.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from authsvc.db import normalise_url

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic's defaults: migrations/env.py configures neither a version table nor a schema.
VERSION_TABLE = "alembic_version"


def migrations_dir() -> Path:
    candidates = [
        os.environ.get("AUTHSVC_MIGRATIONS_DIR"),
        str(Path(__file__).resolve().parents[2] / "migrations"),
        str(Path.cwd() / "migrations"),
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "env.py").is_file():
            return Path(candidate)
    raise RuntimeError("cannot find the migrations folder; set AUTHSVC_MIGRATIONS_DIR")


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option(
        "file_template",
        "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(slug)s",
    )
    config.attributes["database_url"] = normalise_url(database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


# -- Is the schema at head? (/readyz, `authsvc check-config`, serve's background workers) --


class SchemaBehindError(Exception):
    """The database's schema is older than this release's migrations."""


@dataclass(frozen=True)
class SchemaState:
    current: tuple[str, ...]
    heads: tuple[str, ...]
    known: bool  # every current revision is one of this release's scripts

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)

    @property
    def behind(self) -> bool:
        # A revision this release does not know was written by a newer release (a rolling
        # deploy migrated first): that schema is not behind, so it is not a failure here.
        return not self.at_head and self.known

    def describe(self) -> str:
        current = ", ".join(self.current) or "none"
        heads = ", ".join(self.heads)
        if self.behind:
            return f"migrations behind (current {current}, head {heads})"
        if self.at_head:
            return f"at head ({heads})"
        return f"newer than this release (current {current}, head {heads})"


class ScriptError(RuntimeError):
    """A revision script whose identifiers cannot be read without running it."""


def _literal(node: ast.expr | None, path: Path, name: str) -> tuple[str, ...]:
    """``None``, a string, or a tuple/list of strings: what a script may assign."""
    try:
        value = ast.literal_eval(node) if node is not None else None
    except ValueError:
        raise ScriptError(f"{path.name}: {name} is not a literal") from None
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ScriptError(f"{path.name}: {name} is not a string, a list of strings or None")


def read_script(path: Path) -> tuple[str, tuple[str, ...]]:
    """``(revision, down_revisions)`` from a script's module-level assignments: the two
    names alembic reads from the module it imports."""
    found: dict[str, ast.expr | None] = {}
    for node in ast.parse(path.read_bytes(), filename=str(path)).body:
        targets: list[ast.expr]
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in {"revision", "down_revision"}:
                found[target.id] = value
    if "revision" not in found:
        raise ScriptError(f"{path.name}: no revision identifier")
    revision = _literal(found["revision"], path, "revision")
    if len(revision) != 1:
        raise ScriptError(f"{path.name}: revision must be one string")
    return revision[0], _literal(found.get("down_revision"), path, "down_revision")


@lru_cache(maxsize=1)
def _scripts() -> tuple[tuple[str, ...], frozenset[str]]:
    """This release's head revisions and every revision it knows (read once: the scripts
    do not change while the process runs)."""
    return script_heads(migrations_dir() / "versions")


def script_heads(versions: Path) -> tuple[tuple[str, ...], frozenset[str]]:
    """The heads (revisions no other script revises) and every known revision, read from
    the ``.py`` files of ``versions`` that alembic loads (every one except ``__init__*`` and
    editor lock files ``.#*``; not subfolders: ``recursive_version_locations`` is off)."""
    down: dict[str, tuple[str, ...]] = {}
    for path in sorted(versions.glob("*.py")):
        if path.name.startswith(("__init__", ".#")):
            continue
        revision, parents = read_script(path)
        down[revision] = parents
    revised = {parent for parents in down.values() for parent in parents}
    heads = tuple(sorted(rev for rev in down if rev not in revised))
    return heads, frozenset(down)


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """What ``alembic_version`` holds; none on a database that was never migrated."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return ()
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return tuple(str(row[0]) for row in rows)


def schema_state(connection: Connection) -> SchemaState:
    """One read of ``alembic_version`` (none on a database that was never migrated): the
    same two queries alembic's ``MigrationContext.get_current_heads`` makes."""
    heads, known = _scripts()
    current = current_revisions(connection)
    return SchemaState(current=current, heads=heads, known=all(rev in known for rev in current))


def check_schema(connection: Connection) -> SchemaState:
    """``schema_state``, raising SchemaBehindError (its message names both revisions)."""
    state = schema_state(connection)
    if state.behind:
        raise SchemaBehindError(f"{state.describe()}: run `authsvc migrate`")
    return state
