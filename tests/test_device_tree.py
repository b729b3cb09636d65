"""scripts/device_tree.sh: folders no GPU call reads leave the working tree and come back, with
git status clean throughout (a commit cannot delete them)."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_slim_takes_the_folders_out_and_full_puts_them_back(tmp_path):
    repo = tmp_path / "repo"
    files = {"figures/a.png": 3_000_000, "models/diffusion-binary/m.safetensors": 2_000_000,
             "models/diffusion-composite-binary/m.safetensors": 1_000_000, "results/quick/checkpoints/x.pt": 500_000,
             "results/paper/checkpoints/y.pt": 400_000, "results/paper/packs/p.jsonl.gz": 100_000, "scripts/device_tree.sh": 0}
    for name, size in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(b"x" * size)
    shutil.copy(ROOT / "scripts" / "device_tree.sh", repo / "scripts" / "device_tree.sh")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-qm", "tree")

    def run(step: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "scripts/device_tree.sh", step], cwd=repo, capture_output=True, text=True)

    assert run("size").stdout.startswith("tree 7.0 MB, .whl 0.0 MB")
    assert run("slim").returncode == 0
    present = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts)
    assert present == ["models/diffusion-composite-binary/m.safetensors", "results/paper/packs/p.jsonl.gz",
                       "scripts/device_tree.sh"]
    assert _git(repo, "status", "--porcelain") == ""  # nothing to commit: no deletion can be committed
    assert run("size").stdout.startswith("tree 1.1 MB")
    assert run("full").returncode == 0
    assert all((repo / name).stat().st_size == size for name, size in files.items() if size)
    # a sweep's call leaves the composite generator behind too
    proc = subprocess.run(["bash", "scripts/device_tree.sh", "slim", "models/diffusion-composite-binary/"], cwd=repo,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not (repo / "models").exists() and run("size").stdout.startswith("tree 0.1 MB")
    assert run("full").returncode == 0 and (repo / "models/diffusion-composite-binary/m.safetensors").is_file()
    proc = run("wide")
    assert proc.returncode == 2 and "device_tree.sh slim" in proc.stdout
