"""A codebase that stays small and layered (issue 16, item 8).

- no module under src/ is over 400 lines;
- the top-level ``authsvc/dependencies.py`` imports no domain package (a package with its
  own endpoints): each domain keeps its dependency aliases in its own ``dependencies``
  module, as its endpoints keep its routes;
- every admin route takes the admin requirement from its router, once, and no other route
  has it;
- each ``.pyi`` stub under src/ matches its module (mypy's stubtest imports the module and
  compares every name and signature).

``mypy --strict src`` itself runs in ``make lint``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute

from authsvc.config import Settings
from authsvc.dependencies import require_admin
from authsvc.main import create_app
from tests.test_authorization import is_admin_path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "authsvc"
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*") if p.suffix in {".py", ".pyi"})


def _domains() -> set[str]:
    return {p.parent.name for p in PACKAGE.glob("*/endpoints.py")}


def _imported_modules(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            if node.module == "authsvc":  # from authsvc import auth
                yield from (f"authsvc.{alias.name}" for alias in node.names)


def test_no_module_is_over_400_lines() -> None:
    sizes = {p.relative_to(ROOT): len(p.read_text().splitlines()) for p in _modules()}
    assert len(sizes) > 50  # the walk found the package
    too_long = {str(path): n for path, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"split these modules (over {MAX_LINES} lines): {too_long}"


def test_the_domains_are_the_packages_with_endpoints() -> None:
    # Guards the next test against passing on an empty set.
    assert {"auth", "admin", "audit", "invitations", "profile", "mfa"} <= _domains()


def test_top_level_dependencies_import_no_domain_package() -> None:
    tree = ast.parse((PACKAGE / "dependencies.py").read_text())
    imported = set(_imported_modules(tree))
    assert "authsvc.cognito.tokens" in imported  # the walk sees the imports
    domains = _domains()
    offending = sorted(
        name for name in imported if name.startswith("authsvc.") and name.split(".")[1] in domains
    )
    assert not offending, f"authsvc/dependencies.py imports domain packages: {offending}"


def test_each_domain_owns_its_service_alias() -> None:
    """The aliases that used to live in the top-level module are in their domains."""
    from authsvc import dependencies

    for moved in ("AuthServiceDep", "ProfileServiceDep", "InvitationServiceDep", "AuditDep"):
        assert not hasattr(dependencies, moved), moved
    from authsvc.audit.dependencies import AuditDep
    from authsvc.auth.dependencies import AuthServiceDep
    from authsvc.invitations.dependencies import InvitationServiceDep
    from authsvc.profile.dependencies import ProfileServiceDep

    assert all((AuditDep, AuthServiceDep, InvitationServiceDep, ProfileServiceDep))


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _served(routes: list[Any]) -> list[Any]:
    """The API routes as served: newer FastAPI keeps included routers wrapped, and a
    route's effective ``dependencies`` and ``dependant`` (its routers' added) are on the
    route context it serves the route through."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: routes are copied into the app, flat
        return [r for r in routes if isinstance(r, APIRoute)]
    return [c for c in iter_route_contexts(routes) if isinstance(c.original_route, APIRoute)]


@pytest.fixture(scope="module")
def routes() -> list[Any]:
    app = create_app(
        Settings(
            cognito_user_pool_id="us-east-1_codebase",
            cognito_client_id="codebase",
            database_url="sqlite://",
            secret_key="codebase-check-only-key",
            dev_mode=True,
        )
    )
    return _served(app.routes)


def test_every_admin_route_has_the_admin_requirement_from_its_router(routes: list[Any]) -> None:
    admin = [r for r in routes if is_admin_path(r.path)]
    assert len(admin) >= 10, [r.path for r in admin]
    for route in admin:
        where = f"{sorted(route.methods)} {route.path}"
        from_router = [d.dependency for d in route.dependencies]
        assert require_admin in from_router, f"{where}: its router does not require an admin"
        # ... and not from the endpoint's own parameters (it would be a per-route repeat).
        own = get_dependant(path=route.path_format, call=route.endpoint)
        assert require_admin not in set(_calls(own)), f"{where} asks for the admin itself"
        direct = [sub.call for sub in route.dependant.dependencies]
        assert direct.count(require_admin) == 1, f"{where} repeats the admin requirement"
        assert require_admin in set(_calls(route.dependant))


def test_no_other_route_requires_an_admin(routes: list[Any]) -> None:
    others = [r for r in routes if not is_admin_path(r.path)]
    assert any(r.path == "/v1/invitations/accept" for r in others)
    for route in others:
        assert require_admin not in set(_calls(route.dependant)), route.path


@pytest.mark.parametrize(
    "stub", sorted(p.relative_to(PACKAGE.parent) for p in PACKAGE.rglob("*.pyi")), ids=str
)
def test_stub_matches_its_module(stub: Path) -> None:
    module = ".".join(stub.with_suffix("").parts)
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", module, "--concise"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_is_a_stub_to_check() -> None:
    assert list(PACKAGE.rglob("*.pyi")), "the stub test would check nothing"
