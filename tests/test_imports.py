"""No import cycles in npae, its kernels and its benchmarks, except the one the engine is built on.

The graph is read from the source (``ast``), not by importing: every ``import`` and ``from ...
import`` counts, at the top of a module or inside a function (a lazy import hides a cycle from
the interpreter, not from a reader). ``from package import name`` is an edge to the submodule
when ``name`` is one, else to the package's ``__init__``. The parent packages Python runs first
are not edges.

One cycle is by design: Tensor's operators (``x + y``, ``x.sum()``) are ops, and every op makes
Tensors, so ``npae/engine/tensor.py`` imports ``npae.ops`` at its very end (and reaches the
backward walk and ``ToDevice`` from inside methods). Those edges out of ``npae.engine.tensor``
are the allowed ones; any other cycle fails the test, named module by module.

    python tests/test_imports.py      prints every cycle, allowed ones included
"""

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# folder -> the package it installs as (setup.cfg's package_dir)
ROOTS = {"npae": "npae", "kernels": "npae.kernels", "benchmarks": "npae.benchmarks"}

# Tensor <-> ops: the engine's one deliberate cycle (see the module docstring)
ALLOWED_FROM = "npae.engine.tensor"
ALLOWED_TO = ("npae.ops", "npae.engine.function", "npae.engine.backward")


def modules(repo=REPO) -> dict:
    """{dotted module name: path} for every .py file under the package folders."""
    found = {}
    for folder, package in ROOTS.items():
        for path in sorted((repo / folder).rglob("*.py")):
            parts = list(path.relative_to(repo / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _absolute(module, level, name, is_package):
    """The absolute name of ``from <level dots><name> import ...`` inside ``module``."""
    if level == 0:
        return name
    base = module.split(".")
    # a package's __init__ is its own level-1 anchor; a plain module's is its parent
    base = base[:len(base) - level + (1 if is_package else 0)]
    return ".".join(base + ([name] if name else []))


def _alias(name):
    # the top-level folders import each other under their installed names
    for folder, package in ROOTS.items():
        if folder != package and (name == folder or name.startswith(folder + ".")):
            return package + name[len(folder):]
    return name


def graph(repo=REPO) -> dict:
    """{module: sorted modules it imports}, both within the repository."""
    known = modules(repo)
    edges = {}
    for module, path in known.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    name = _alias(alias.name)
                    # `import a.b.c` binds a.b.c (the deepest module we know)
                    while name and name not in known:
                        name = name.rpartition(".")[0]
                    if name:
                        targets.add(name)
            elif isinstance(node, ast.ImportFrom):
                base = _alias(_absolute(module, node.level, node.module, is_package))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in known:
                        targets.add(sub)
                    elif base in known:
                        targets.add(base)
        targets.discard(module)
        edges[module] = sorted(targets)
    return edges


def cycles(edges) -> list:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # iterative Tarjan: (node, iterator over its successors)
        work = [(v, iter(edges.get(v, ())))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, successors = work[-1]
            for w in successors:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(edges.get(w, ()))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def _path(edges, members, start):
    """One cycle through ``start`` inside ``members``, as a list of modules (breadth first)."""
    previous = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in edges[v]:
            if w == start:
                path = [v]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if w in members and w not in previous:
                previous[w] = v
                queue.append(w)
    return [start]


def without_allowed(edges) -> dict:
    return {v: [w for w in ws if not (v == ALLOWED_FROM and w in ALLOWED_TO)]
            for v, ws in edges.items()}


def describe(edges, components) -> str:
    """Each cycle's modules, and one path around it."""
    return "\n".join(f"{{{', '.join(c)}}}\n  e.g. " + " -> ".join(_path(edges, set(c), c[0]))
                     for c in components)


# ------------------------------------------------------------------------------------ tests
def test_the_graph_sees_the_known_edges():
    edges = graph()
    assert "npae.benchmarks.cases" in edges["npae.benchmarks.suite"]  # from .cases import
    assert "npae.engine.dispatch" in edges["npae.optim"]  # from npae.engine.dispatch import
    assert "npae.kernels" in edges["npae.engine.dispatch"]  # from npae import kernels
    assert "npae.ops" in edges["npae.engine.tensor"]
    assert "npae.engine.backward" in edges["npae.engine.tensor"]  # imported inside a method


def test_the_only_cycle_is_tensor_and_its_ops():
    edges = graph()
    # with them, the engine's deliberate cycle is there (the check can see a cycle) ...
    assert any(ALLOWED_FROM in c for c in cycles(edges))
    # ... and without the tensor -> ops edges, nothing is left
    rest = without_allowed(edges)
    left = cycles(rest)
    assert not left, "import cycles:\n" + describe(rest, left)


if __name__ == "__main__":
    g = graph()
    found = cycles(g)
    print(f"{len(g)} modules, {sum(map(len, g.values()))} imports, {len(found)} cycle(s)")
    if found:
        print(describe(g, found))
    rest = without_allowed(g)
    left = cycles(rest)
    print(f"without {ALLOWED_FROM} -> {', '.join(ALLOWED_TO)}: {len(left)} cycle(s)")
    if left:
        print(describe(rest, left))
    sys.exit(1 if left else 0)
