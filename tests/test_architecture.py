"""The import graph of harness/ and baselines/, read from the source (imports inside
functions included): no cycles, and no import that points up a layer (README,
"Architecture")."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import its own layer (without cycles) and the layers below.
LAYERS = [
    ("base", ["harness.errors", "harness.registry", "harness.cache", "harness.version",
              "harness.host", "harness.safe_yaml", "harness.run_lock"]),
    ("models and data", ["harness.variants", "harness.families", "harness.checkpoints",
                         "harness.canonical_weights", "harness.data", "harness.samples"]),
    ("measurement", ["harness.profiling", "harness.metrics", "harness.quantize", "harness.train",
                     "harness.devices", "harness.remote_device", "harness.derive"]),
    ("orchestration", ["harness.plan", "harness.executor", "harness.records", "harness.suite",
                       "harness.runner", "harness.score", "harness.variant_profile",
                       "harness.progress"]),
    ("reports", ["harness.report"]),
    ("cli", ["harness.cli", "harness.cli_args"]),
    # the public API (``import harness``) and what registers through it
    ("public API", ["harness"]),
    ("plugins", ["baselines"]),
]


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best is None:
        raise AssertionError(f"module {module} is in no layer of tests/test_architecture.py")
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        pkg = module.split(".") if is_package else module.split(".")[:-1]
        pkg = pkg[:len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([node.module] if node.module else []))
    # ``from pkg import sub`` imports the submodule when there is one
    return [f"{base}.{a.name}" for a in node.names] + [base]


def imports_of(path: Path, known: set[str]) -> list[tuple[str, int]]:
    module = module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            cands = _resolve(node, module, path.name == "__init__.py")
            names = [c for c in cands[:-1] if c in known] or [cands[-1]]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              == "import_module" and node.args and isinstance(node.args[0], ast.Constant)):
            names = [str(node.args[0].value)]
        for n in names:
            # the closest known module: harness.metrics.fid for harness.metrics.fid.thing
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != module:
                out.append((n, node.lineno))
    return out


def graph() -> dict[str, list[tuple[str, int]]]:
    files = sorted(list((ROOT / "harness").rglob("*.py")) + list((ROOT / "baselines").rglob("*.py")))
    known = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, known) for f in files}


def up_edges(g) -> list[str]:
    bad = []
    for mod, edges in g.items():
        for target, line in edges:
            if layer_of(target) > layer_of(mod):
                bad.append(f"{mod} (line {line}) imports {target}: "
                           f"'{LAYERS[layer_of(mod)][0]}' may not import '{LAYERS[layer_of(target)][0]}'")
    return bad


def cycles(g) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w, _ in g.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_points_up_a_layer():
    bad = up_edges(graph())
    assert not bad, "imports that point up a layer:\n" + "\n".join(bad)


def test_no_import_cycles():
    g = graph()
    found = cycles(g)
    msgs = []
    for comp in found:
        edges = [f"{a} -> {b} (line {ln})" for a in comp for b, ln in g[a] if b in comp]
        msgs.append(f"cycle of {len(comp)} modules: " + "; ".join(edges))
    assert not found, "\n".join(msgs)


def test_the_checker_catches_a_back_import_and_a_cycle():
    g = {"harness.errors": [("harness.report.table", 3)], "harness.report.table": [("harness.errors", 1)]}
    assert up_edges(g) == ["harness.errors (line 3) imports harness.report.table: "
                           "'base' may not import 'reports'"]
    assert cycles(g) == [["harness.errors", "harness.report.table"]]


def test_function_level_imports_are_edges(monkeypatch, tmp_path):
    pkg = tmp_path / "harness"
    (pkg / "report").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "report" / "__init__.py").write_text("")
    (pkg / "report" / "table.py").write_text("")
    (pkg / "errors.py").write_text("def f():\n    from .report import table\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    known = {"harness", "harness.report", "harness.report.table", "harness.errors"}
    assert imports_of(pkg / "errors.py", known) == [("harness.report.table", 2)]


def test_baselines_do_not_pull_in_the_runner_or_the_reports():
    code = ("import sys, baselines; "
            "bad = sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['harness','runner'], ['harness','executor'], ['harness','report'], ['harness','cli'])); "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
