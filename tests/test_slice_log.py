"""scripts/slice_log.py: a GPU slice's card, commit and wall time into results/<profile>/slices.tsv."""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("slice_log", ROOT / "scripts" / "slice_log.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _slice(folder: Path, log: str) -> Path:
    folder.mkdir()
    (folder / "sweep.log").write_text(log)
    (folder / "gpu.txt").write_text("NVIDIA H100 80GB HBM3, 81559 MiB, 580.159.04\n")
    # first a record the sweep copied from a store it shares (an older commit), then the slice's own
    records = {"old": {"commit": "0123456789ab" * 3, "hash": "old", "finished_at": "2026-12-07T10:40:00+00:00"},
               "abc": {"commit": "f6f9e468a0f8f7f130ea2f91bf16759aaf7d5cd1", "hash": "abc",
                       "finished_at": "2026-12-07T15:00:00+00:00"}}
    with tarfile.open(folder / "runs.tgz", "w:gz") as tar:
        for name, record in records.items():
            data = json.dumps(record).encode()
            info = tarfile.TarInfo(f"results/paper/runs/{name}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return folder


def test_a_slice_becomes_one_row(tmp_path):
    mod = _module()
    files = _slice(tmp_path / "s", "runs: 100%\nsweep exit 0 after 452 s: --profile paper --mode none usb\n"
                                    "180 records in runs.tgz\n")
    row = mod.parse(files)
    assert row == {"gpu": "NVIDIA H100 80GB HBM3", "commit": "f6f9e468a0f8", "exit": "0", "wall_s": "452",
                   "records": "180", "args": "--profile paper --mode none usb", "concurrent": "1", "card_s": "452",
                   "synthetic": ""}


def test_the_sets_on_disk_a_slice_could_read_are_named(tmp_path):
    mod = _module()
    files = _slice(tmp_path / "s", "sweep exit 0 after 300 s: --profile composite\n"
                                    "synthetic set composite-binary/balanced/manifest.csv: sha1 0123456789ab\n"
                                    "synthetic set composite-animals/balanced/manifest.csv: sha1 ba9876543210\n"
                                    "12 records in runs.tgz\n")
    assert mod.parse(files)["synthetic"] == ("composite-binary/balanced:0123456789ab "
                                             "composite-animals/balanced:ba9876543210")


def test_a_slice_that_shared_its_call_keeps_its_card_share_and_old_files_gain_the_columns(tmp_path, monkeypatch):
    mod = _module()
    # cut by its timeout: the progress bar's last line runs into the exit line
    files = _slice(tmp_path / "s", "runs:  21%| 91/425 [07:45<22:11]sweep exit 124 after 500 s: --profile paper-labelfree\n"
                                    "90 records in runs.tgz\n"
                                    "call: 2 slices in 530 s, card share 289 s\n")
    row = mod.parse(files)
    assert (row["exit"], row["wall_s"], row["concurrent"], row["card_s"]) == ("124", "500", "2", "289")
    # a slices.tsv written before the two columns: its rows ran alone, so their share is their wall
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    old = tmp_path / "results" / "paper-labelfree" / "slices.tsv"
    old.parent.mkdir(parents=True)
    old.write_text("imported_at\tgpu\tcommit\texit\twall_s\trecords\targs\n"
                   "2026-12-07T10:47Z\tNVIDIA H100 80GB HBM3\tf6f9e468a0f8\t0\t200\t180\t--profile x\n")
    assert mod.main([str(files), "paper-labelfree"]) == 0
    rows = mod.read(old)
    assert [(r["wall_s"], r["concurrent"], r["card_s"]) for r in rows] == [("200", "1", "200"), ("500", "2", "289")]
    assert old.read_text().splitlines()[0].split("\t") == list(mod.COLUMNS)


def test_a_cut_slice_is_refused_in_one_line(tmp_path):
    mod = _module()
    files = _slice(tmp_path / "s", "runs:  40%|████ \n")  # killed before the sweep's last line
    with pytest.raises(SystemExit, match="no 'sweep exit N after S s: ARGS' line"):
        mod.parse(files)
    with pytest.raises(SystemExit, match="no such file"):
        mod.parse(tmp_path / "missing")
