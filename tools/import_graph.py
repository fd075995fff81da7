"""Count fewstep's import cycles and upward imports against its layers.

    python tools/import_graph.py [--package fewstep] [--path src] [--list]

Edges are module imports (function-level ones included, as import-linter sees them) folded to
the top-level subpackage (`fewstep.gates.check` -> `fewstep.gates`). A cycle is a strongly
connected set of two or more subpackages; an upward import goes from a lower layer to a higher
one (LAYERS, top first, as in pyproject's import-linter layers contract).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

LAYERS = (
    ("cli",),
    ("recipes", "testing", "doctor"),
    ("distill", "compile", "zoo", "evaluation"),
    ("quantize", "gates"),
    ("sampling", "sd3_pipeline", "families", "components", "null_tokens", "stock_schedule"),
    ("runtime", "targets"),
    ("fsutil", "checkpoint", "student", "onnx_io", "cpu", "precisions", "config", "errors", "logs", "grids"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", default="fewstep")
    ap.add_argument("--path", default="src")
    ap.add_argument("--list", action="store_true", help="print every upward import")
    args = ap.parse_args()
    sys.path.insert(0, args.path)
    import grimp

    graph = grimp.build_graph(args.package)
    top = {}
    for level, names in enumerate(LAYERS):
        for name in names:
            top[f"{args.package}.{name}"] = level

    def fold(module: str) -> str:
        return ".".join(module.split(".")[:2])

    edges: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = fold(module), fold(imported)
            if a != b and b != args.package:
                edges[(a, b)].append((module, imported))
    adjacency: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        adjacency[a].add(b)
    cycles = _sccs(adjacency)
    upward = {(a, b): pairs for (a, b), pairs in edges.items() if a in top and b in top and top[b] < top[a]}
    n_up = sum(len(p) for p in upward.values())
    print(f"cycles: {len(cycles)}" + "".join(f"\n  {' <-> '.join(sorted(c))}" for c in cycles))
    print(f"upward imports: {n_up} (module pairs) across {len(upward)} package pairs")
    for (a, b), pairs in sorted(upward.items()):
        print(f"  {a} -> {b}: {len(pairs)}")
        if args.list:
            for m, i in sorted(pairs):
                print(f"      {m} -> {i}")


def _sccs(adjacency: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components of size >= 2."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adjacency.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in list(adjacency):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    main()
