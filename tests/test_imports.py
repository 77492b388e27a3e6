"""No import cycles between the modules of the package.

The graph counts every import grimp finds, including those inside functions and under
`TYPE_CHECKING`, so a lazy import cannot hide a cycle. Break a new one with a leaf module (as
`auth/principal.py`, `jobs.py` and `media/storage.py` are), not an import inside a function.
"""

from __future__ import annotations

from collections.abc import Callable

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


# --- layers -------------------------------------------------------------------------------------
# Who may import whom, beyond "no cycles" (docs/architecture.md §2). Each rule: the modules it
# is about, and the importers allowed; any other importer inside vidgate breaks it.

# The entry points: cli.py, and serving.py, which builds the app in each API process it starts.
COMPOSITION_USERS = {"vidgate.app", "vidgate.cli", "vidgate.serving"}
LAYER_RULES: list[tuple[str, Callable[[str], bool], Callable[[str], bool]]] = [
    (
        "the composition (app, composition, job_registry) is used by app.py, cli.py and"
        " serving.py alone",
        lambda m: m in {"vidgate.app", "vidgate.composition", "vidgate.job_registry"},
        lambda importer: importer in COMPOSITION_USERS | {"vidgate.composition"},
    ),
    (
        "endpoint modules are imported by app.py alone (the OpenAPI builder reads routes)",
        lambda m: m.endswith((".endpoints", ".admin_endpoints")),
        lambda importer: importer == "vidgate.app",
    ),
    (
        "flows are imported by endpoints, jobs and other flows, never by a service",
        lambda m: m.endswith(".flows"),
        # The console's routes (`admin_endpoints`) and the command line are endpoints too.
        lambda importer: (
            importer.endswith((".endpoints", ".admin_endpoints", ".jobs", ".flows"))
            or importer == "vidgate.cli"
        ),
    ),
]
# Leaves import nothing of vidgate but other leaves.
LEAVES = {"vidgate.errors", "vidgate.kit", "vidgate.vendors", "vidgate.db.session"}


def layer_violations(graph: grimp.ImportGraph) -> list[str]:
    found = []
    for rule, about, allowed in LAYER_RULES:
        for module in sorted(m for m in graph.modules if about(m)):
            for importer in sorted(graph.find_modules_that_directly_import(module)):
                if not allowed(importer):
                    found.append(f"{rule}: {importer} imports {module}")
    for leaf in sorted(LEAVES & graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(leaf) - LEAVES):
            if imported.startswith(PACKAGE + "."):
                found.append(f"{leaf} is a leaf but imports {imported}")
    return found


def test_layer_rules_catch_a_service_importing_a_flow() -> None:
    graph = grimp.ImportGraph()
    for module in ("vidgate", "vidgate.tasks", "vidgate.tasks.flows", "vidgate.tasks.service"):
        graph.add_module(module)
    graph.add_import(importer="vidgate.tasks.service", imported="vidgate.tasks.flows")
    assert layer_violations(graph) == [
        "flows are imported by endpoints, jobs and other flows, never by a service:"
        " vidgate.tasks.service imports vidgate.tasks.flows"
    ]


def test_layers() -> None:
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    assert graph.modules >= LEAVES
    violations = layer_violations(graph)
    assert not violations, "\n".join(violations)
