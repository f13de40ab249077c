"""YAML that a careless or hostile file cannot turn into a crash or an exhausted machine.

PyYAML's safe loader builds no objects, but a few bytes of aliases ("billion laughs")
expand into a structure too large to validate or copy, a recursive alias into a loop,
and deep nesting overflows its recursive composer; duplicate keys silently keep the last
value. ``load_yaml`` refuses all of these, and bytes that are not UTF-8, with a message
that names the file and, where there is one, the line."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import BadInput

MAX_BYTES = 1_000_000      # a suite or device file is a few kB
MAX_NODES = 200_000        # scalars and containers after aliases are expanded
MAX_DEPTH = 64


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue   # '<<: *base' merges; the mapping's own keys may override those
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue   # an unhashable key: the base loader reports it
            if first is not None:
                raise BadInput(f"duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                               f"(first at line {first})")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _check_size(obj, where: str) -> None:
    """Walk the loaded value as it would be expanded (shared aliases count each time)."""
    count, path = 0, set()

    def walk(x, depth):
        nonlocal count
        count += 1
        if count > MAX_NODES:
            raise BadInput(f"{where}: the YAML expands to more than {MAX_NODES:,} values "
                           "(aliases that repeat each other?); refused")
        if depth > MAX_DEPTH:
            raise BadInput(f"{where}: YAML nested deeper than {MAX_DEPTH} levels; refused")
        if isinstance(x, (dict, list)):
            if id(x) in path:
                raise BadInput(f"{where}: a recursive YAML alias (a value that contains itself); refused")
            path.add(id(x))
            for v in (list(x.keys()) + list(x.values())) if isinstance(x, dict) else x:
                walk(v, depth + 1)
            path.discard(id(x))

    walk(obj, 0)


def load_yaml_text(text: str, where: str):
    try:
        obj = yaml.load(text, Loader=_Loader)   # noqa: S506 (a SafeLoader subclass)
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None
    except RecursionError:
        raise BadInput(f"{where}: YAML nested too deeply to read; refused") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BadInput(f"{where}{at}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
    _check_size(obj, where)
    return obj


def load_yaml(path: str | Path, what: str = "file"):
    """The YAML value in ``path``; every refusal is a BadInput naming ``what`` and the file."""
    path = Path(path)
    where = f"{what} {path}"
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadInput(f"{where}: cannot read ({exc.strerror})") from None
    if size > MAX_BYTES:
        raise BadInput(f"{where}: {size:,} bytes; a YAML file here is at most {MAX_BYTES:,} bytes")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise BadInput(f"{where}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at "
                       f"offset {exc.start})") from None
    return load_yaml_text(text, where)
