"""scripts/device_slice.sh builds the sweep the GPU call runs (python3 and nvidia-smi stubbed)."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    (stub / "python3").write_text('#!/bin/sh\necho "python3 $*"\n')
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
    assert "export-checkpoints results/paper --out /tmp/ckpt --half --ratio 0.99 --seeds 0 1 2" in log
    assert "--ratio 0.999" not in log and (tmp_path / "out" / "gpu.txt").read_text().startswith("NVIDIA H100")


def test_a_whole_profile_and_a_missing_argument(tmp_path):
    proc, log = _run(tmp_path, "paper-pilot", "all", "all")
    assert proc.returncode == 0 and log.splitlines()[0].endswith("--results results")
    assert "export-checkpoints" not in log
    proc, _ = _run(tmp_path, "paper")
    assert proc.returncode == 2 and "device_slice.sh PROFILE DATASET|all RATIO|all" in proc.stdout


def _run_many(tmp_path: Path, *specs: str) -> subprocess.CompletedProcess:
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    # each stub sweep prints its command; the 'ffr' one ends its log as the sweep does
    (stub / "python3").write_text('#!/bin/sh\necho "python3 $*"\nsleep 2\n')
    (stub / "nvidia-smi").write_text("#!/bin/sh\necho NVIDIA H200, 143771 MiB, 580\n")
    for f in stub.iterdir():
        f.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{stub}:{os.environ['PATH']}", "OUT": str(out), "FFR_COMMIT": "abc123"}
    return subprocess.run(["bash", str(ROOT / "scripts" / "device_slices.sh"), *specs], cwd=tmp_path, env=env,
                          capture_output=True, text=True)


def test_slices_of_one_call_run_together_each_with_its_card_share(tmp_path):
    proc = _run_many(tmp_path, "paper shapes-binary 0.99 none usb asb ffr", "paper-labelfree shapes-binary 0.999")
    assert proc.returncode == 0, proc.stderr
    logs = [(tmp_path / "out" / f"slice{i}" / "sweep.log").read_text().splitlines() for i in (1, 2)]
    assert logs[0][0].endswith("--profile paper --executor packed --compile --results results "
                               "--dataset shapes-binary --ratio 0.99 --mode none usb asb ffr")
    assert logs[1][0].endswith("--profile paper-labelfree --executor packed --compile --results results "
                               "--dataset shapes-binary --ratio 0.999")
    # both ran at once: the call took about one slice's second, not two; shares add up to the call
    calls = [line for log in logs for line in log if line.startswith("call: ")]
    assert len(calls) == 2 and all(c.startswith("call: 2 slices in ") for c in calls)
    call_s = int(calls[0].split()[4])
    assert call_s <= 3  # one after the other: at least 4
    shares = [int(c.rsplit(" ", 2)[1]) for c in calls]
    assert sum(shares) <= call_s and (tmp_path / "out" / "slice2" / "gpu.txt").read_text().startswith("NVIDIA H200")


def test_one_store_twice_in_a_call_is_refused(tmp_path):
    proc = _run_many(tmp_path, "paper shapes-binary 0.99 none", "paper shapes-binary 0.97 none")
    assert proc.returncode == 2 and "profile paper twice" in proc.stderr
    assert not (tmp_path / "out" / "slice1").exists()
    proc = _run_many(tmp_path, "paper shapes-binary")
    assert proc.returncode == 2 and "need PROFILE DATASET RATIO" in proc.stderr
