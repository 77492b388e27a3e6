"""No import cycles between the modules of the package.

The graph counts every import grimp finds, including those inside functions and under
`TYPE_CHECKING`, so a lazy import cannot hide a cycle. Break a new one with a leaf module (as
`auth/principal.py`, `jobs.py` and `media/storage.py` are), not an import inside a function.
"""

from __future__ import annotations

import grimp

PACKAGE = "vidgate"

# Cycles known and accepted for now, each as its sorted modules. Empty: there are none.
ALLOWED_CYCLES: set[tuple[str, ...]] = set()


def import_cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """The strongly connected components of more than one module (or a module importing
    itself), each sorted; found with Tarjan's algorithm, iteratively."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[tuple[str, ...]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    cycles.append(tuple(sorted(component)))
    return sorted(cycles)


def describe(graph: grimp.ImportGraph, cycle: tuple[str, ...]) -> str:
    """The cycle's modules and each import between them, with its line."""
    lines = [" <-> ".join(cycle)]
    members = set(cycle)
    for importer in cycle:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(
                    f"    {importer}:{detail['line_number']} -> {imported}"
                    f"  ({detail['line_contents']})"
                )
    return "\n".join(lines)


def test_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c", "p.d"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    graph.add_import(importer="p.d", imported="p.a")
    assert import_cycles(graph) == [("p.a", "p.b", "p.c")]


def test_no_import_cycles() -> None:
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    new = [cycle for cycle in import_cycles(graph) if cycle not in ALLOWED_CYCLES]
    assert not new, "import cycles inside vidgate:\n" + "\n".join(
        describe(graph, cycle) for cycle in new
    )
