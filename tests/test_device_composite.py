"""scripts/device_composite.sh and device_wheels.sh: what the composite generator's GPU calls run
(python3 and nvidia-smi stubbed) and what comes back."""

import os
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the stub records each call; a training makes its --out folder with a file in it
STUB = """#!/bin/sh
echo "python3 $* [PYTHONPATH=$PYTHONPATH]" >> "$CALLS"
out=""
prev=""
for a in "$@"; do [ "$prev" = "--out" ] && out="$a"; prev="$a"; done
case "$*" in *train_diffusion.py*) mkdir -p "$out" && echo weights > "$out/model.safetensors";; esac
case "$*" in *"cli generate"*) mkdir -p "$out" && echo "index,sha1" > "$out/manifest.csv";; esac
"""


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    (stub / "python3").write_text(STUB)
    (stub / "nvidia-smi").write_text("#!/bin/sh\necho NVIDIA H100 80GB HBM3, 81559 MiB, 580\n")
    for f in stub.iterdir():
        f.chmod(0o755)
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "PATH": f"{stub}:{os.environ['PATH']}", "OUT": str(out), "FFR_COMMIT": "abc123",
           "CALLS": str(calls), "TMPDIR": str(tmp_path / "tmp")}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "device_composite.sh"), *args], cwd=work, env=env,
                          capture_output=True, text=True)
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_train_runs_both_layouts_and_sends_back_each_checkpoint_folder(tmp_path):
    proc, calls = _run(tmp_path, "train")
    assert proc.returncode == 0, proc.stderr
    assert calls[0].startswith("python3 -c from ffr_lib.data.composite import")  # the data load first
    trains = sorted(c for c in calls if "train_diffusion.py" in c)
    assert [t.split("--layout ")[1].split()[0] for t in trains] == ["animals", "binary"]
    assert all("--benchmark composite" in t and "--device cuda" in t and "--max-minutes 6" in t for t in trains)
    # the scripts import ffr_lib from the repository root: it leads PYTHONPATH
    assert all(f"[PYTHONPATH={tmp_path / 'work'}" in t for t in trains)
    for layout in ("binary", "animals"):
        with tarfile.open(tmp_path / "out" / f"diffusion-composite-{layout}.tgz") as tar:
            assert f"diffusion-composite-{layout}/model.safetensors" in tar.getnames()
    assert (tmp_path / "out" / "gpu.txt").read_text().startswith("NVIDIA H100")


def test_more_continues_each_layout_from_its_committed_checkpoint(tmp_path):
    proc, calls = _run(tmp_path, "more")
    assert proc.returncode == 0, proc.stderr
    trains = sorted(c for c in calls if "train_diffusion.py" in c)
    assert [t.split("--init ")[1].split()[0] for t in trains] == ["models/diffusion-composite-animals",
                                                                  "models/diffusion-composite-binary"]
    (tmp_path / "fresh").mkdir()
    _, calls = _run(tmp_path / "fresh", "train")
    assert not any("--init" in c for c in calls if "train_diffusion.py" in c)


def test_checks_leave_the_weights_out_and_a_wrong_step_is_refused(tmp_path):
    for layout in ("binary", "animals"):
        folder = tmp_path / "work" / "models" / f"diffusion-composite-{layout}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_text("weights")
        (folder / f"composite_generator_{layout}.csv").write_text("detector\n1.0\n")
    proc, calls = _run(tmp_path, "checks")
    assert proc.returncode == 0, proc.stderr
    assert sum("composite_checks.py --what generator" in c for c in calls) == 2
    with tarfile.open(tmp_path / "out" / "checks.tgz") as tar:
        names = tar.getnames()
    assert "diffusion-composite-animals/composite_generator_animals.csv" in names
    assert not any(n.endswith(".safetensors") for n in names)
    proc, _ = _run(tmp_path, "sample")
    assert proc.returncode == 2 and "device_composite.sh train" in proc.stdout


def test_wheels_refuses_an_unknown_set(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "device_wheels.sh"), "all"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "device_wheels.sh diffusion" in proc.stdout


def test_sets_go_to_the_machines_cache_and_their_manifests_come_back(tmp_path):
    proc, calls = _run(tmp_path, "sets")
    assert proc.returncode == 0, proc.stderr
    gens = [c for c in calls if "ffr_lib.cli generate" in c]
    assert [(g.split("--dataset ")[1].split()[0], g.split("--total ")[1].split()[0]) for g in gens] == [
        ("composite-binary", "14000"), ("composite-animals", "28000")]
    assert all("--generator diffusion --model models/diffusion-composite-" in g for g in gens)
    assert all("--out .cache/synthetic/composite-" in g for g in gens)
    with tarfile.open(tmp_path / "out" / "sets-manifests.tgz") as tar:
        assert sorted(tar.getnames()) == ["composite-animals/balanced/manifest.csv",
                                          "composite-binary/balanced/manifest.csv"]
