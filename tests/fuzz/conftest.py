"""Per-operation test ids for Schemathesis items.

Schemathesis 4.32 builds one item per operation, but on pytest 9.2 (which derives an item's id
from its original name and parametrization) they would all share the test function's bare id;
give each its operation back so reports, `-k` and `--lf` tell them apart.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        label = getattr(item, "operation_label", None)
        if label and "[" not in item.nodeid:
            item._id = item._id.with_params(label)
