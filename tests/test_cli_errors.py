"""User errors of `ffr`: one line on stderr naming what was wrong, exit code 2, no traceback, and
(for names) no heavy import; the name table kept equal to the registries; runs' errors keep their cause."""

import importlib
import io
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from ffr_lib import names
from ffr_lib.cli import main
from ffr_lib.errors import UsageError, error_cause, errors_by_cause

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pandas", "numpy", "diffusers", "papermill", "matplotlib", "nbformat")
PROBE = (
    "import json, sys\n"
    "from ffr_lib.cli import main\n"
    "code = main(sys.argv[1:])\n"
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    "sys.exit(code)\n"
)


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (names.DATA_ROOT_ENV, names.SYNTHETIC_ROOT_ENV)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return {**env, **extra}


def _ffr(*argv: str, **env: str) -> subprocess.CompletedProcess:
    """`ffr argv` in a fresh interpreter; its stdout ends with the heavy modules it had imported."""
    return subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=ROOT,
                          env=_env(**env), timeout=120)


# -- the name table equals the registries ------------------------------------------------------
def test_name_table_equals_the_registries():
    from ffr_lib.data import DATASETS, celeba, spuco, utk, world
    from ffr_lib.generation import synthetic_set
    from ffr_lib.generation.recipes import RECIPES
    from ffr_lib.generation.sources import SOURCES
    from ffr_lib.sweeps import executors, profiles
    from ffr_lib.training import config, methods, models, modes

    assert set(names.DATASETS) == set(DATASETS.names()) and len(names.DATASETS) == len(DATASETS.names())
    assert set(names.WORLD_DATASETS) == {d for d in DATASETS if d.startswith("shapes-")}
    assert {m.NAME: m.LAYOUT for m in (celeba, utk, spuco)} == names.REAL_LAYOUTS
    assert set(names.WORLD_LAYOUTS) == set(world.LAYOUTS)
    assert set(names.PROFILES) == set(profiles.PROFILES.names())
    for name in names.PROFILES:
        assert tuple(profiles.get_profile(name).datasets()) == names.PROFILE_DATASETS[name], name
    assert set(names.EXECUTORS) == set(executors.EXECUTORS.names())
    assert names.MODES == config.MODE_NAMES == profiles.MODES
    assert set(names.METHODS) == set(methods.METHODS.names()) == set(config.METHOD_NAMES)
    assert set(names.MODELS) == set(models.MODELS.names())
    assert names.RECIPES == RECIPES
    assert set(names.GENERATORS) == set(SOURCES.names())
    assert set(names.SYNTHETIC_SOURCES) == set(modes.SYNTHETIC_SOURCES.names())
    assert names.SYNTHETIC_MANIFEST == synthetic_set.MANIFEST_FILE


def test_environment_variable_names_are_the_ones_the_code_reads(monkeypatch, tmp_path):
    from ffr_lib.training import modes
    from ffr_lib.training.config import RunConfig

    monkeypatch.setenv(names.DATA_ROOT_ENV, str(tmp_path))
    assert modes.data_root("celeba-hq") == str(tmp_path / "celeba-hq")
    monkeypatch.delenv(names.SYNTHETIC_ROOT_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=f"set {names.SYNTHETIC_ROOT_ENV} to"):
        modes.SYNTHETIC_SOURCES["disk"](RunConfig(dataset="celeba-hq", generator="disk"), None, None, 0, 0, False)


# -- one line, exit 2, before heavy imports (fresh interpreters) -------------------------------
KNOWN_DATASETS = f"known: {', '.join(names.DATASETS)}"


@pytest.mark.parametrize(("argv", "line"), [
    (["sweep", "--profile", "foo"],
     f"ffr sweep: --profile: unknown profile 'foo'; known: {', '.join(names.PROFILES)}"),
    (["sweep", "--executor", "foo"],
     "ffr sweep: --executor: unknown executor 'foo'; known: inprocess, packed, gpus, processes, slurm, dry"),
    (["sweep", "--dataset", "foo", "--executor", "dry"], f"ffr sweep: --dataset: unknown dataset 'foo'; {KNOWN_DATASETS}"),
    (["generate", "--dataset", "foo", "--out", "unused"],
     f"ffr generate: --dataset: unknown dataset 'foo'; {KNOWN_DATASETS}"),
    (["sweep", "--dataset", "celeba-hq"],
     "ffr sweep: --dataset celeba-hq: profile 'quick' is a grid on the embedded world (pool sizes, 32 px, small "
     "CNNs); its options do not apply to celeba-hq; use a profile made for it: paper-real, paper-real-official"),
    (["sweep", "--profile", "paper-real"],
     "ffr sweep: celeba-hq, spuco-animals, utk-face are read from $FFR_DATA_ROOT/<dataset>, and FFR_DATA_ROOT is "
     f"not set; expected celeba-hq: {names.REAL_LAYOUTS['celeba-hq']} (README: Real datasets)"),
    (["notebooks", "-p", "threads", "two"],
     "ffr notebooks: -p threads: 03_ffr_ablations parameter threads is int (>= 1); got 'two' (str)"),
])
def test_user_error_is_one_line_exit_2_before_heavy_imports(argv, line):
    done = _ffr(*argv)
    assert done.returncode == 2, done.stderr
    assert done.stderr == line + "\n"
    assert json.loads(done.stdout.splitlines()[-1]) == []  # nothing heavy was imported


def test_debug_shows_the_traceback():
    for argv in (["--debug", "sweep", "--profile", "foo"], ["sweep", "--profile", "foo", "--debug"]):
        done = _ffr(*argv)
        assert done.returncode == 1
        assert done.stderr.startswith("Traceback (most recent call last):")
        assert done.stderr.rstrip().endswith(f"UsageError: --profile: unknown profile 'foo'; known: "
                                             f"{', '.join(names.PROFILES)}")


def test_argparse_errors_are_one_line_too():
    done = subprocess.run([sys.executable, "-m", "ffr_lib.cli", "sweep", "--workers", "x"], capture_output=True,
                          text=True, cwd=ROOT, env=_env(), timeout=120)
    assert done.returncode == 2
    assert done.stderr == "ffr sweep: argument --workers: invalid int value: 'x' (see ffr sweep --help)\n"


# -- the same contract in-process ---------------------------------------------------------------
def _one_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_a_dataset_of_the_other_kind_is_refused_with_the_reason(capsys, tmp_path):
    line = _one_line(capsys, ["sweep", "--profile", "paper-real", "--dataset", "shapes-binary", "--executor", "dry"])
    assert line == ("ffr sweep: --dataset shapes-binary: profile 'paper-real' is a grid on the real datasets (224 px "
                    "ResNet-50 from ImageNet weights, synthetic sets from disk); its options do not apply to "
                    "shapes-binary; use a profile made for it: "
                    + ", ".join(p for p, ds in names.PROFILE_DATASETS.items() if "shapes-binary" in ds))
    # a world dataset replaces the world profile's own
    assert main(["sweep", "--dataset", "shapes-animals", "--executor", "dry", "--results", str(tmp_path)]) == 0
    planned = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ")]
    assert len(planned) == 12 and all("shapes-animals" in ln for ln in planned)


def test_missing_or_empty_data_roots_fail_once_with_the_layout(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(names.DATA_ROOT_ENV, str(tmp_path / "data"))
    base = ["sweep", "--profile", "paper-real", "--results", str(tmp_path / "results")]
    layout = names.REAL_LAYOUTS["celeba-hq"]
    assert _one_line(capsys, base) == (f"ffr sweep: $FFR_DATA_ROOT/celeba-hq: {tmp_path}/data/celeba-hq does not "
                                       f"exist; expected {layout}")
    (tmp_path / "data" / "celeba-hq").mkdir(parents=True)
    assert _one_line(capsys, base + ["--dataset", "celeba-hq"]) == (
        f"ffr sweep: $FFR_DATA_ROOT/celeba-hq: {tmp_path}/data/celeba-hq is empty; expected {layout}")
    assert not (tmp_path / "results").exists()  # nothing planned, nothing trained
    # the dry run prints the plan without data
    assert main(base + ["--dataset", "utk-face", "--executor", "dry", "--ratio", "0.999"]) == 0
    assert "plan for" in capsys.readouterr().out


def test_missing_synthetic_sets_fail_once_before_training(capsys, tmp_path, monkeypatch):
    for d in ("celeba-hq", "utk-face", "spuco-animals"):
        (tmp_path / "data" / d).mkdir(parents=True)
        (tmp_path / "data" / d / "x.jpg").write_bytes(b"")
    monkeypatch.setenv(names.DATA_ROOT_ENV, str(tmp_path / "data"))
    monkeypatch.delenv(names.SYNTHETIC_ROOT_ENV, raising=False)
    # utk-face: 5 ratios x 3 seeds x (USB, ASB: 2 x 4 methods x 4 lrs; FFR: 4 methods x 6 lrs x 2 BN) = 1200
    base = ["sweep", "--profile", "paper-real", "--dataset", "utk-face", "--results", str(tmp_path / "results")]
    assert _one_line(capsys, base) == (
        "ffr sweep: 1200 run(s) read synthetic sets made by `ffr generate` from $FFR_SYNTHETIC_ROOT/<dataset>/"
        "<balanced|agnostic>, and FFR_SYNTHETIC_ROOT is not set (first: utk-face/balanced)")
    monkeypatch.setenv(names.SYNTHETIC_ROOT_ENV, str(tmp_path / "synthetic"))
    folder = tmp_path / "synthetic" / "utk-face" / "balanced"
    assert _one_line(capsys, base) == (
        f"ffr sweep: $FFR_SYNTHETIC_ROOT/utk-face/balanced: {folder} holds no set made by `ffr generate` (no "
        f"manifest.csv); make it with `ffr generate --dataset utk-face --recipe balanced --out {folder}`")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(("argv", "line"), [
    (["generate", "--dataset", "celeba-hq", "--generator", "procedural", "--out", "x"],
     "ffr generate: --generator procedural renders the embedded world and the composite benchmark only "
     "(shapes-binary, shapes-animals, composite-binary, composite-animals), not celeba-hq; use --generator sd"),
    (["generate", "--dataset", "shapes-binary", "--generator", "diffusion", "--out", "x"],
     "ffr generate: --generator diffusion needs --model: a checkpoint folder (scripts/train_diffusion.py)"),
    (["generate", "--dataset", "composite-binary", "--generator", "diffusion", "--model", "no/such", "--out", "x"],
     "ffr generate: --model no/such: not a diffusion checkpoint folder (no config.json; scripts/train_diffusion.py "
     "makes one)"),
    (["generate", "--dataset", "shapes-binary", "--root", "x", "--out", "x"],
     "ffr generate: --root: shapes-binary is the embedded world and reads no folder"),
    (["generate", "--dataset", "shapes-binary", "--fidelity", "2", "--out", "x"],
     "ffr generate: --fidelity must be in [0, 1], got 2.0"),
    (["sweep", "--workers", "0"], "ffr sweep: --workers must be >= 1, got 0"),
    (["figures", "--only", "05"], "ffr figures: --only: unknown notebook '05'; known: 02, 03, 04"),
    (["figures", "--only", "claims", "05"], "ffr figures: --only: unknown notebook '05'; known: 02, 03, 04"),
])
def test_more_bad_arguments(capsys, argv, line):
    assert _one_line(capsys, argv) == line


def test_generate_names_an_empty_root(capsys, tmp_path):
    (tmp_path / "utk").mkdir()
    assert _one_line(capsys, ["generate", "--dataset", "utk-face", "--root", str(tmp_path / "utk"), "--out", "x"]) == (
        f"ffr generate: utk-face root: {tmp_path}/utk is empty; expected {names.REAL_LAYOUTS['utk-face']}")


# -- failed runs keep their cause ---------------------------------------------------------------
def _traceback(exc: BaseException) -> str:
    try:
        raise exc
    except BaseException:  # noqa: BLE001
        return traceback.format_exc()


def test_error_cause_keeps_the_whole_exception_line():
    long = "celeba-hq: root folder /data/celeba-hq does not exist. " + "x" * 400 + " Expected layout: <root>/..."
    text = _traceback(FileNotFoundError(long))
    assert len(text) > 500 and not text[-300:].startswith("FileNotFoundError")
    assert error_cause(text) == f"FileNotFoundError: {long}"
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer\nsecond line") from inner
    except ValueError:
        chained = traceback.format_exc()
    assert error_cause(chained) == "ValueError: outer second line"
    assert error_cause("diverged at epoch 3 (loss nan)\n") == "diverged at epoch 3 (loss nan)"
    grouped = errors_by_cause([{"error": text}, {"error": chained}, {"error": text}])
    assert [(cause[:17], len(g)) for cause, g in grouped] == [("FileNotFoundError", 2), ("ValueError: outer", 1)]


def test_a_sweeps_failed_runs_are_reported_by_cause(capsys, tmp_path, monkeypatch):
    from ffr_lib.sweeps import executors

    long = "no such file: " + "/very/long/path" * 30
    monkeypatch.setattr(executors, "run_one", lambda config, *a, **k: {
        "hash": "h", "label": "lbl", "status": "error", "error": _traceback(FileNotFoundError(long))})
    assert main(["sweep", "--profile", "smoke", "--results", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    # smoke's 4 runs and FFR's stage 1 they depend on
    assert f"5 run(s) raised FileNotFoundError: {long} (first: lbl, h)\n" in err
    assert out.count(f"error: lbl (h): FileNotFoundError: {long}\n") == 5  # each progress note too


def test_sweep_table_shows_learning_rates_as_written():
    import pandas as pd

    from ffr_lib.sweeps.cli import format_table

    text = format_table(pd.DataFrame({"mode": ["ffr", "ffr"], "lr": [1e-4, 1e-3], "test_wa_mean": [0.12345, 0.5]}))
    rows = [line.split() for line in text.splitlines()]
    assert rows == [["mode", "lr", "test_wa_mean"], ["ffr", "0.0001", "0.123"], ["ffr", "0.001", "0.500"]]


# -- ffr figures: missing records first, labels that tell runs apart ---------------------------
def test_figures_reports_missing_records_before_building_and_labels_differ(tmp_path, monkeypatch):
    B = importlib.import_module("ffr_lib.paper_figures.build")  # the package's `build` is a function
    stream = io.StringIO()
    built = []
    monkeypatch.setattr(B, "build_notebook", lambda nb, *a, **k: built.append((nb, stream.getvalue())) or [])
    assert B.build_all("quick", tmp_path, tmp_path / "out", only=["02", "03", "04"], stream=stream) == 1
    assert [nb for nb, _ in built] == ["02"]
    before_02 = built[0][1]
    assert before_02.startswith("03_ffr_ablations: not built:") and "04_mitigation_combinations: not built:" in before_02
    ablations, quick = before_02.split("04_mitigation_combinations: not built:")
    for section, shown in ((ablations, 20), (quick, 12)):  # 20 of quick-ablations' 27 runs, all 12 of quick's
        listed = [ln.strip() for ln in section.splitlines() if ln.startswith("  shapes-")]
        assert len(listed) == len(set(listed)) == shown


def test_labels_show_what_sets_runs_apart():
    from dataclasses import replace

    from ffr_lib.sweeps.profiles import get_profile
    from ffr_lib.training.config import RunConfig, labels

    base = RunConfig(mode="asb", fingerprint=0.3)
    grid = [base, replace(base, model="vit-small"), replace(base, corruption=5), replace(base, mode="none")]
    assert labels(grid) == [
        "shapes-binary r=0.99 asb/erm lr=0.001 s=0",
        "shapes-binary r=0.99 asb/erm lr=0.001 s=0 model=vit-small",
        "shapes-binary r=0.99 asb/erm lr=0.001 s=0 corruption=5",
        "shapes-binary r=0.99 none/erm lr=0.001 s=0",  # the generator's settings do not apply to None
    ]
    for name in names.PROFILES:
        configs = get_profile(name).configs()
        assert len(set(labels(configs))) == len(configs), name


def test_usage_error_is_one_line():
    assert str(UsageError("a\nb")) == "a b"


def test_a_sweep_sliced_by_mode_keeps_those_modes_and_their_dependencies(tmp_path, capsys):
    from ffr_lib.cli import main as ffr

    assert ffr(["sweep", "--profile", "paper", "--executor", "dry", "--dataset", "shapes-binary", "--ratio", "0.999",
                "--mode", "none", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "60 runs in the grid" in out and " usb/" not in out and " ffr" not in out
    assert ffr(["sweep", "--profile", "paper", "--executor", "dry", "--mode", "foo"]) == 2
    assert capsys.readouterr().err == "ffr sweep: --mode: unknown mode 'foo'; known: none, usb, asb, ffr\n"
