"""scripts/import_call.sh imports each slice folder of a call with the profile its sweep.log names
(scripts/import_slice.sh stubbed)."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _call(tmp_path: Path, folders: dict[str, str | None]) -> subprocess.CompletedProcess:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "import_call.sh", repo / "scripts")
    (repo / "scripts" / "import_slice.sh").write_text('echo "import_slice $1 $2"\n')
    files_at = tmp_path / "files"
    for name, log in folders.items():
        (files_at / name).mkdir(parents=True)
        if log is None:
            (files_at / name / "pytest.txt").write_text("1 passed\n")
        else:
            (files_at / name / "sweep.log").write_text(log)
    return subprocess.run(["bash", "scripts/import_call.sh", str(files_at)], cwd=repo, capture_output=True, text=True)


def test_each_slice_folder_goes_to_the_store_its_log_names(tmp_path):
    proc = _call(tmp_path, {
        "a": "runs:  40%| 72/180\rruns: 100%\nsweep exit 124 after 231 s: --profile paper-labelfree --executor packed\n",
        "b": "sweep exit 0 after 250 s: --profile paper --executor packed --dataset shapes-animals\n9 records in runs.tgz\n",
        "t": None,  # not a slice
    })
    files = tmp_path / "files"
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("import_slice")] == [
        f"import_slice {files}/a paper-labelfree", f"import_slice {files}/b paper"]


def test_a_log_without_its_exit_line_or_no_slice_at_all_is_one_line(tmp_path):
    proc = _call(tmp_path, {"a": "runs:  40%| 72/180"})
    assert proc.returncode == 2 and proc.stderr.strip().endswith("a/sweep.log: no 'sweep exit N after S s: --profile P' line")
    assert "import_slice" not in proc.stdout
    proc = _call(tmp_path / "2", {"t": None})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no slice folder" in proc.stderr
