"""The package's layers, checked from its source: no import arrow may point up.

``../shared/DESIGN.md`` draws the house in four layers, arrows pointing down only:

1. faces   -- views, admin, management commands, the emulator, testing helpers, checks, apps
2. domain  -- models, security and value rules, signals and receivers
3. engines -- delivery and provisioning (they know no Django models)
4. edges   -- the bridge, the AWS client cache, settings, exceptions

Every ``import`` in every module counts, including the lazy ones inside functions: a lazy import
that dodges a circle is still an arrow. The test parses the source (nothing is imported), so a
new arrow up fails here with the exact line, before it becomes a circle at run time.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "aws_ws_async"

FACES, DOMAIN, ENGINES, EDGES = 1, 2, 3, 4
LAYER_NAMES = {FACES: "faces", DOMAIN: "domain", ENGINES: "engines", EDGES: "edges"}

#: First component below ``aws_ws_async`` -> layer. A module missing here fails the test, so a
#: new top-level module has to be placed on purpose.
LAYERS: dict[str, int] = {
    "": FACES,  # aws_ws_async/__init__.py: public names, imported lazily
    "apps": FACES,
    "checks": FACES,
    "admin": FACES,
    "admin_forms": FACES,
    "admin_sessions": FACES,
    "admin_broadcasts": FACES,
    "admin_channels": FACES,
    "management": FACES,
    "views": FACES,
    "mixins": FACES,
    "emulator": FACES,
    "testing": FACES,
    "models": DOMAIN,
    "channels": DOMAIN,
    "receivers": DOMAIN,
    "scaleout": DOMAIN,
    "signals": DOMAIN,
    "security": DOMAIN,
    "validators": DOMAIN,
    "hashing": DOMAIN,
    "delivery": ENGINES,
    "provisioning": ENGINES,
    "aws": EDGES,
    "sync": EDGES,
    "asyncdb": EDGES,
    "asyncdb_pool": EDGES,
    "conf": EDGES,
    "exceptions": EDGES,
    "telemetry": EDGES,
    "admin_dashboard": FACES,
    "metrics_view": FACES,
}

#: Packages that must not import Django's ORM (engines take plain values) or Django at all.
NO_ORM = ("aws_ws_async.delivery", "aws_ws_async.provisioning")
NO_DJANGO = ("aws_ws_async.delivery", "aws_ws_async.emulator")
#: The emulator's pytest plugin and its Django management face are allowed to know Django.
DJANGO_ALLOWED = ("aws_ws_async.emulator.pytest_plugin", "aws_ws_async.emulator.management")


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    base = PACKAGE.parent / relative
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def arrows_of(path: Path) -> list[Arrow]:
    """Every import of ``path`` as (source module, imported module, line)."""
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    found: list[Arrow] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Arrow(source, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                # ``from aws_ws_async import aws`` imports the module aws_ws_async.aws.
                candidate = f"{target}.{alias.name}"
                found.append(
                    Arrow(source, candidate if is_module(candidate) else target, node.lineno)
                )
    return found


def layer_of(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else ""
    if key.startswith("admin_"):
        key = "admin"  # admin_actions, admin_forms, ...: faces of the admin
    if key not in LAYERS:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return LAYERS[key]


def production_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def all_arrows() -> list[Arrow]:
    return [arrow for path in production_modules() for arrow in arrows_of(path)]


def upward(arrows: list[Arrow]) -> list[str]:
    problems = []
    for arrow in arrows:
        if not arrow.target.startswith("aws_ws_async"):
            continue
        source, target = layer_of(arrow.source), layer_of(arrow.target)
        if target < source:
            problems.append(
                f"{arrow} ({LAYER_NAMES[source]} -> {LAYER_NAMES[target]}: an arrow up)"
            )
    return problems


def test_every_module_has_a_layer() -> None:
    for path in production_modules():
        layer_of(module_name(path))


def test_no_import_points_up_the_layers() -> None:
    assert upward(all_arrows()) == []


def test_engines_know_no_django_orm() -> None:
    offenders = [
        str(arrow)
        for arrow in all_arrows()
        if arrow.source.startswith(NO_ORM)
        and (arrow.target.startswith("django.db") or arrow.target.startswith("aws_ws_async.models"))
    ]
    assert offenders == []


def test_delivery_and_emulator_know_no_django() -> None:
    offenders = [
        str(arrow)
        for arrow in all_arrows()
        if arrow.source.startswith(NO_DJANGO)
        and not arrow.source.startswith(DJANGO_ALLOWED)
        and (arrow.target == "django" or arrow.target.startswith("django."))
    ]
    assert offenders == []


def test_no_production_module_over_400_lines() -> None:
    long = {
        module_name(p): n
        for p in production_modules()
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("aws_ws_async.models.sessions", "aws_ws_async.views.base", True),
        ("aws_ws_async.delivery.engine", "aws_ws_async.models.sessions", True),
        ("aws_ws_async.conf", "aws_ws_async.provisioning.spec", True),
        ("aws_ws_async.views.base", "aws_ws_async.models.sessions", False),
        ("aws_ws_async.models.sessions", "aws_ws_async.delivery.engine", False),
        ("aws_ws_async.delivery.engine", "aws_ws_async.delivery.limiter", False),
    ],
)
def test_the_checker_itself_sees_an_arrow_up(source: str, target: str, expected: bool) -> None:
    """The rule is not vacuous: a made-up arrow up is reported, one down is not."""
    assert bool(upward([Arrow(source, target, 1)])) is expected
