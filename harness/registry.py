"""Small, boring name -> object registries with three ways in.

1. A decorator or a call in Python (``register_variant``, ``register_metric`` ...).
2. Entry points of installed packages, one group per registry (``avatarbench.families``,
   ``avatarbench.variants``, ``avatarbench.metrics``, ``avatarbench.suites``,
   ``avatarbench.devices``). An entry point names a module (importing it registers
   things) or a callable taking no arguments (calling it registers things).
3. ``--plugin FILE``: a Python file imported once by path.

The shipped family and baselines are loaded like plugins too: the package root names
them (``add_builtin_source``), so this module imports nothing above it by name.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable, Generic, Iterator, Optional, TypeVar

from .errors import BadInput, unknown_name

T = TypeVar("T")

ENTRY_POINT_GROUPS = ("avatarbench.families", "avatarbench.variants", "avatarbench.metrics",
                      "avatarbench.suites", "avatarbench.devices")


class Registry(Generic[T]):
    """``on_first_use``: called once before the first look-up (after the entry points),
    for registries that also read user files (device profiles from AVATARBENCH_DEVICES)."""

    def __init__(self, kind: str, on_first_use: Optional[Callable[[], None]] = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._on_first_use = on_first_use

    def _ready(self) -> None:
        load_builtins()
        if self._on_first_use is not None:
            fn, self._on_first_use = self._on_first_use, None
            fn()

    def add(self, name: str, item: T, origin: str = "", builtin: bool = False) -> T:
        if not builtin:
            load_builtins()  # so a clash with a shipped name is reported here, not later
        if name in self._items:
            raise BadInput(
                f"duplicate {self.kind} name '{name}': already registered by "
                f"{self._origin[name] or 'an earlier registration'}"
                f"{', now again by ' + origin if origin else ''}")
        self._items[name] = item
        self._origin[name] = origin
        return item

    def get(self, name: str) -> T:
        self._ready()
        if name not in self._items:
            raise unknown_name(self.kind, name, self._items,
                               "Plugins register more with --plugin FILE or entry points.")
        return self._items[name]

    def names(self) -> list[str]:
        self._ready()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._ready()
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        self._ready()
        return iter([self._items[n] for n in sorted(self._items)])


_builtins_loaded = False
_builtin_sources: list[str] = []
_loaded_plugins: dict[str, str] = {}


def current_origin() -> str:
    """Who is registering right now (for duplicate-name messages)."""
    return _origin_stack[-1] if _origin_stack else "python code"


_origin_stack: list[str] = []


def _with_origin(origin: str, fn: Callable[[], object]) -> object:
    _origin_stack.append(origin)
    try:
        return fn()
    finally:
        _origin_stack.pop()


def load_builtins() -> None:
    """Import the built-in sources (the shipped family and baselines), then every
    installed entry point, once."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in _builtin_sources:
        _with_origin(f"built-in {module}", lambda m=module: importlib.import_module(m))
    for group in ENTRY_POINT_GROUPS:
        for ep in entry_points(group=group):
            origin = f"entry point '{ep.name}' ({ep.value}) in group {group}"
            try:
                obj = _with_origin(origin, ep.load)
                if callable(obj) and not isinstance(obj, type):
                    _with_origin(origin, obj)
            except BadInput:
                raise
            except Exception as exc:  # a broken plugin must not look like our bug
                raise BadInput(f"{origin} failed to load: {type(exc).__name__}: {exc}") from exc


def add_builtin_source(module: str) -> None:
    """A module whose import registers shipped things, loaded with the entry points."""
    if module not in _builtin_sources:
        _builtin_sources.append(module)


def load_plugin(path: str | Path) -> str:
    """Import a plugin file by path; return its sha256. Loading the same file twice is a no-op."""
    load_builtins()
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise BadInput(f"plugin file not found: {path}")
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    if str(p) in _loaded_plugins:
        return _loaded_plugins[str(p)]
    mod_name = f"avatarbench_plugin_{digest[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise BadInput(f"plugin file {path} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        _with_origin(f"plugin {p}", lambda: spec.loader.exec_module(module))
    except BadInput:
        raise
    except SyntaxError as exc:
        raise BadInput(f"plugin file {p}, line {exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:
        raise BadInput(f"plugin file {p} failed to import: {type(exc).__name__}: {exc}") from exc
    _loaded_plugins[str(p)] = digest
    return digest


def loaded_plugins() -> dict[str, str]:
    return dict(_loaded_plugins)
