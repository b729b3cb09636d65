import subprocess
import sys

from ffr_lib.cli import COMMANDS, main


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "ffr_lib.cli", "--help"], capture_output=True, text=True, check=True)
    for name in COMMANDS:
        assert name in out.stdout


def test_world_command_writes_table_grid_and_sidecar(tmp_path, monkeypatch):
    from ffr_lib.data import world

    monkeypatch.setattr(world, "split_counts", _small_counts(world.split_counts))
    assert main(["world", "--layout", "binary", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "world_binary_samples.json", "world_binary_samples.png", "world_binary_samples.svg",
        "world_binary_subgroups.csv", "world_binary_subgroups.json",
    ]
    header = (tmp_path / "world_binary_subgroups.csv").read_text().splitlines()[0]
    assert header.startswith("class,bias,train,val,test,train@0.9")


def _small_counts(original):
    def small(config, split):
        return [(y, b, max(12, n // 100)) for y, b, n in original(config, split)]

    return small


def test_sweep_ratio_runs_a_slice_and_names_the_profiles_ratios(tmp_path, capsys):
    args = ["sweep", "--profile", "quick", "--executor", "dry", "--results", str(tmp_path)]
    assert main(args + ["--ratio", "0.99"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert listed and all("r=0.99" in line for line in listed)
    assert main(args) == 0
    assert any("r=0.95" in line for line in capsys.readouterr().out.splitlines())
    assert main(args + ["--ratio", "0.9"]) == 2
    assert capsys.readouterr().err == "ffr sweep: --ratio [0.9]: profile 'quick' has ratios [0.95, 0.99]\n"


def test_sweep_on_cpu_worker_processes(tmp_path, capsys):
    """`ffr sweep --executor processes --workers 2` runs the smoke grid in two CPU processes of
    one thread each and prints the table."""
    from ffr_lib.results import ResultStore

    assert main(["sweep", "--profile", "smoke", "--executor", "processes", "--workers", "2",
                 "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0 failed, 0 errors" in out
    records = ResultStore(tmp_path / "smoke").records()
    assert records and {r["device"] for r in records} == {"cpu"} and {r["threads"] for r in records} == {1}


def test_sweep_compile_is_refused_by_executors_that_do_not_compile(tmp_path, capsys):
    assert main(["sweep", "--profile", "smoke", "--executor", "processes", "--compile", "--results",
                 str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("ffr sweep: --compile: executor 'processes' does not compile; "
                                       "use packed or inprocess\n")
    assert not (tmp_path / "smoke").exists()


def test_sweep_devices_are_refused_by_one_device_executors_and_all_needs_a_gpu(tmp_path, monkeypatch, capsys):
    import torch

    assert main(["sweep", "--profile", "smoke", "--devices", "cpu", "cpu", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("ffr sweep: --devices: executor 'inprocess' runs on one device; "
                                       "use packed or gpus\n")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert main(["sweep", "--profile", "smoke", "--executor", "packed", "--devices", "all", "--results",
                 str(tmp_path)]) == 2
    assert capsys.readouterr().err == "ffr sweep: --devices all: no visible GPU (CUDA_VISIBLE_DEVICES?)\n"
    assert not (tmp_path / "smoke").exists()
