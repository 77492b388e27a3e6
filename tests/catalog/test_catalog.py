"""The model catalog: the built-in defaults, an operator's file on top, and every problem a file
can have reported with the entry it is in."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidgate.catalog.loader import CatalogError, build_catalog, default_text, load_catalog

KINDS = ("animate-move", "animate-mix", "text-to-video", "image-to-video")


def test_built_in_catalog_sells_every_kind_at_the_base_api_prices() -> None:
    catalog = load_catalog(None)
    prices = {
        kind: {
            tier.name: catalog.default_for(kind).price(tier.name).credits
            for tier in catalog.default_for(kind).tiers
        }
        for kind in KINDS
    }
    assert prices == {
        "animate-move": {"wan-std": 10, "wan-pro": 14},
        "animate-mix": {"wan-std": 10, "wan-pro": 14},
        "text-to-video": {"standard": 20, "hd": 30},
        "image-to-video": {"standard": 25, "hd": 35},
    }
    for kind in KINDS:
        model = catalog.default_for(kind)
        assert model.offered
        enabled = [c for c in model.channels if c.enabled]
        assert len({c.adapter for c in enabled}) >= 2, f"{kind}: one vendor only"
    assert [m.billing for m in (catalog.default_for(k) for k in KINDS)] == [
        "metered",
        "metered",
        "prepaid",
        "prepaid",
    ]


def test_sora_2_is_retired_but_known() -> None:
    catalog = load_catalog(None)
    sora = catalog.get("sora-2")
    assert sora is not None and not sora.offered
    assert "sora-2" not in [m.id for m in catalog.offered()]
    assert [m.id for m in catalog.offered("text-to-video")] == ["wan2.7-t2v", "wan2.6-t2v"]


def test_prepaid_price_scales_with_duration_rounded_up() -> None:
    model = load_catalog(None).default_for("text-to-video")
    assert model.limits.duration == 5
    assert [model.price("standard", d).credits for d in (5, 10, 15)] == [20, 40, 60]
    assert model.price("hd", None).credits == 30


OVERRIDE = """
[defaults]
text-to-video = "budget-t2v"

[[models]]
id = "wan2.7-t2v"
kinds = ["text-to-video"]
name = { en = "Wan 2.7", zh = "万相 2.7" }
description = { en = "Now through fal first.", zh = "优先 fal。" }
tiers = [{ name = "standard", credits = 22 }, { name = "hd", credits = 33 }]
limits = { durations = [5, 10] }

[[models.channels]]
id = "fal-wan27-t2v"
adapter = "fal"
vendor_model = "fal-ai/wan/v2.7/text-to-video"

[[models.channels]]
id = "dashscope-wan27-t2v"
adapter = "dashscope"
vendor_model = "wan2.7-t2v"

[[models]]
id = "budget-t2v"
kinds = ["text-to-video"]
name = { en = "Budget", zh = "经济" }
description = { en = "Cheaper, shorter.", zh = "更便宜。" }
tiers = [{ name = "standard", credits = 10 }, { name = "hd", credits = 15 }]
limits = { durations = [4, 8], default_duration = 8 }

[[models.channels]]
id = "kie-budget"
adapter = "kie"
vendor_model = "wan/2-6-text-to-video"
extra = { sound = false }
"""


def test_operator_file_replaces_adds_and_sets_defaults(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(OVERRIDE, encoding="utf-8")
    catalog = load_catalog(path)
    wan = catalog.get("wan2.7-t2v")
    assert wan is not None
    assert [c.id for c in wan.channels] == ["fal-wan27-t2v", "dashscope-wan27-t2v"]
    assert wan.price("standard").credits == 22
    assert wan.limits.durations == (5, 10)
    budget = catalog.default_for("text-to-video")
    assert budget.id == "budget-t2v"
    assert budget.price("hd", 4).credits == 8  # 15 for 8 s, halved and rounded up
    assert budget.channels[0].extra == {"sound": False}
    assert catalog.default_for("image-to-video").id == "wan2.7-i2v"  # untouched
    assert catalog.channel("kie-budget") == (budget, budget.channels[0])


def _model(**changes: str) -> str:
    fields = {
        "id": '"m1"',
        "kinds": '["text-to-video"]',
        "name": '{ en = "M", zh = "M" }',
        "description": '{ en = "M", zh = "M" }',
        "tiers": '[{ name = "standard", credits = 1 }, { name = "hd", credits = 2 }]',
        "limits": "{ durations = [5] }",
        **changes,
    }
    body = "\n".join(f"{k} = {v}" for k, v in fields.items() if v)
    channel = '[[models.channels]]\nid = "c1"\nadapter = "kie"\nvendor_model = "x"\n'
    return f"[[models]]\n{body}\n\n{channel}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[models]\n", "operator.toml: not valid TOML"),
        ("[pricing]\nx = 1\n", "operator.toml: unknown top-level entries: pricing"),
        (
            _model(tiers='[{ name = "standard", credits = 1 }]'),
            'operator.toml: models[7] (id "m1"): tiers must be exactly standard, hd',
        ),
        (
            _model(tiers='[{ name = "standard", credits = 1 }, { name = "hd", credits = 0 }]'),
            'operator.toml: models[7] (id "m1").tiers[1].credits: Input should be greater than'
            " or equal to 1",
        ),
        (
            _model(limits="{ durations = [5], default_duration = 10 }"),
            'operator.toml: models[7] (id "m1").limits: default_duration 10 is not in durations',
        ),
        (
            _model(kinds='["text-to-video", "animate-move"]'),
            'operator.toml: models[7] (id "m1"): kinds mix animate with text or image to video',
        ),
        (
            _model(id='"Bad Id"'),
            'operator.toml: models[7] (id "Bad Id").id: String should match pattern',
        ),
        (
            _model().replace('adapter = "kie"', 'adapter = "sora"'),
            'operator.toml: models[7] (id "m1").channels[0].adapter: Input should be',
        ),
        (
            _model().replace('id = "c1"', 'id = "dashscope-wan27-t2v"'),
            "operator.toml: catalog: channel ids used by more than one model: dashscope-wan27-t2v",
        ),
        (
            '[defaults]\nimage-to-video = "sora-2"\n',
            "operator.toml: catalog: defaults.image-to-video: 'sora-2' is not a live"
            " image-to-video model",
        ),
        (
            '[defaults]\nanimate-mix = "nope"\n',
            "operator.toml: catalog: defaults.animate-mix: no model 'nope'",
        ),
        (
            _model().replace('vendor_model = "x"', 'vendor_model = "x"\nenabled = false'),
            'operator.toml: models[7] (id "m1"): a live model needs at least one enabled channel',
        ),
    ],
)
def test_a_bad_file_names_the_entry_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        build_catalog([("built-in catalog", default_text()), ("operator.toml", text)])
    assert str(caught.value).startswith(message), str(caught.value)


def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(CatalogError, match=r"nope\.toml: cannot be read"):
        load_catalog(missing)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CatalogError, match=r"binary\.toml: not UTF-8 text"):
        load_catalog(binary)
