"""A synthetic set on disk is verified: damaged PNGs are regenerated on resume (sha1, or a decode
for manifests without one), cut manifest rows are refused naming file and line, a missing image
names the `ffr generate` command that repairs the set, and that command does."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ffr_lib.cli import build_parser, main
from ffr_lib.data.world import WorldConfig
from ffr_lib.generation import Recipe, generate_set, load_synthetic_set, make_source, make_spec, read_manifest
from ffr_lib.generation.set_command import generate_command
from ffr_lib.generation.sources import ProceduralSource
from ffr_lib.generation.synthetic_set import SetFileError, SetSpec, png_bytes, sha1_of

BINARY = WorldConfig(layout="binary")
REAL = np.array([[40, 2], [3, 40]])
NAMES = (BINARY.spec.class_names, BINARY.spec.bias_names)


def spec_for(total: int, ratio: float | None = None):
    source = make_source("procedural", "shapes-binary")
    spec = make_spec("shapes-binary", REAL, Recipe("balanced", total=total), source, 0, size=32,
                     class_names=NAMES[0], bias_names=NAMES[1], ratio=ratio)  # fmt: skip
    return spec, source


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def damage(folder: Path) -> None:
    """Image 3 truncated (a PNG cut short), image 9 garbage bytes, image 12 deleted."""
    cut = folder / "images" / "0000003.png"
    cut.write_bytes(cut.read_bytes()[:150])
    (folder / "images" / "0000009.png").write_bytes(np.random.default_rng(0).bytes(700))
    (folder / "images" / "0000012.png").unlink()


def without_sha1(folder: Path) -> None:
    """The manifest as written before the sha1 column existed."""
    path = folder / "manifest.csv"
    m = pd.read_csv(path, dtype=str, keep_default_na=False)
    path.write_text(m.drop(columns="sha1").to_csv(index=False, lineterminator="\n"))


@pytest.fixture
def whole(tmp_path):
    spec, source = spec_for(16)
    generate_set(tmp_path / "whole", spec, source, chunk=4, progress=False)
    return tmp_path / "whole", spec, source


def test_manifest_records_the_sha1_of_each_png(whole):
    folder, _, _ = whole
    m = read_manifest(folder)
    assert m.columns[-1] == "sha1"
    assert all(sha1_of((folder / f).read_bytes()) == h for f, h in zip(m["file"], m["sha1"]))


def test_resume_regenerates_truncated_garbage_and_missing_pngs(whole, tmp_path):
    folder, spec, source = whole
    damaged = tmp_path / "damaged"
    generate_set(damaged, spec, source, chunk=4, progress=False)
    damage(damaged)
    said = []
    generate_set(damaged, spec, source, chunk=4, progress=False, echo=said.append)
    assert len(said) == 2
    assert said[0].startswith(f"{damaged}: 3 of the images kept failed verification (")
    assert "images/0000003.png: its bytes do not match the sha1" in said[0]
    assert "images/0000012.png: missing" in said[0]
    assert said[1] == f"{damaged}: regenerated 3 damaged images"
    assert folder_bytes(damaged) == folder_bytes(folder)  # same PNGs, manifest back in index order
    said.clear()
    generate_set(damaged, spec, source, chunk=4, progress=False, echo=said.append)
    assert said == []  # nothing left to repair, nothing said


def test_manifest_without_sha1_is_verified_by_decoding(whole, tmp_path):
    folder, spec, source = whole
    old = tmp_path / "old"
    generate_set(old, spec, source, chunk=4, progress=False)
    without_sha1(old)
    expected = folder_bytes(old)
    (old / "images" / "0000005.png").write_bytes(png_bytes(np.zeros((8, 8, 3), np.uint8)))  # valid, wrong size
    damage(old)
    with pytest.raises(SetFileError, match=r"0000003\.png: not a readable PNG \(.+\) \(manifest\.csv line 5\)"):
        load_synthetic_set(old)
    said = []
    generate_set(old, spec, source, chunk=4, progress=False, echo=said.append)
    assert "4 of the images kept failed verification" in said[0]
    assert "images/0000005.png: 8x8 px, the set's size is 32" in said[0]
    assert "images/0000009.png: not a readable PNG" in said[0]
    assert said[1].endswith("regenerated 4 damaged images")
    assert folder_bytes(old) == expected  # the old format is kept: no sha1 column appears
    assert (load_synthetic_set(old).images == load_synthetic_set(folder).images).all()


def test_a_kill_during_the_repair_resumes(whole, tmp_path, monkeypatch):
    folder, spec, source = whole
    damaged = tmp_path / "damaged"
    generate_set(damaged, spec, source, chunk=4, progress=False)
    damage(damaged)
    render = ProceduralSource.render
    calls = []

    def killed_after_one_chunk(self, rows, set_seed):
        if calls:
            raise KeyboardInterrupt
        calls.append(len(rows))
        return render(self, rows, set_seed)

    monkeypatch.setattr(ProceduralSource, "render", killed_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        generate_set(damaged, spec, source, chunk=4, progress=False, echo=lambda s: None)
    assert len(read_manifest(damaged)) == 14  # 13 kept + image 3 redone; 9 and 12 still to do
    monkeypatch.setattr(ProceduralSource, "render", render)
    said = []
    generate_set(damaged, spec, source, chunk=4, progress=False, echo=said.append)
    assert said == []  # the rest are simply missing from the manifest, not damaged
    assert folder_bytes(damaged) == folder_bytes(folder)


def test_altered_png_with_a_sha1_is_caught_even_if_it_decodes(whole, tmp_path):
    folder, spec, source = whole
    other = tmp_path / "other"
    generate_set(other, spec, source, chunk=4, progress=False)
    (other / "images" / "0000007.png").write_bytes((folder / "images" / "0000006.png").read_bytes())  # a swap
    with pytest.raises(SetFileError, match=r"0000007\.png: its bytes do not match the sha1 .* line 9\)"):
        load_synthetic_set(other)
    said = []
    generate_set(other, spec, source, chunk=4, progress=False, echo=said.append)
    assert said[-1].endswith("regenerated 1 damaged image")
    assert folder_bytes(other) == folder_bytes(folder)


# -- manifest rows ---------------------------------------------------------------------------------
def cut_last_row(folder: Path, keep_fields: int) -> Path:
    path = folder / "manifest.csv"
    lines = path.read_text().splitlines()
    fields = next(iter(pd.read_csv(path, dtype=str, keep_default_na=False).tail(1).itertuples(index=False)))
    kept = pd.DataFrame([list(fields[:keep_fields]) + [""] * (len(fields) - keep_fields)])
    path.write_text("\n".join(lines[:-1]) + "\n" + kept.to_csv(index=False, header=False, lineterminator="\n"))
    return path


def test_cut_row_is_refused_by_load_and_resume_naming_file_and_line(whole, tmp_path):
    folder, spec, source = whole
    cut = tmp_path / "cut"
    generate_set(cut, spec, source, chunk=4, progress=False)
    path = cut_last_row(cut, keep_fields=7)  # index .. prompt kept; seed, generator, recipe, ... empty
    message = (
        rf"{path} line 17: row cut short \(empty seed, attempt, generator, settings, recipe, "
        r"corruption_severity, sha1\); delete that line, then repair the set with: ffr generate"
    )
    with pytest.raises(SetFileError, match=message) as err:
        load_synthetic_set(cut)
    assert "\n" not in str(err.value) and isinstance(err.value, ValueError)
    with pytest.raises(SetFileError, match=message):
        generate_set(cut, spec, source, chunk=4, progress=False)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))  # what the message says to do
    said = []
    generate_set(cut, spec, source, chunk=4, progress=False, echo=said.append)
    assert said == [] and folder_bytes(cut) == folder_bytes(folder)


def test_rows_with_bad_values_are_refused(whole, tmp_path):
    folder, spec, source = whole
    path = folder / "manifest.csv"
    good = path.read_text()
    lines = good.splitlines()

    def edited(line: int, *changes: tuple[int, str]) -> str:
        fields = lines[line - 1].split(",")
        for field, value in changes:
            fields[field] = value
        return "\n".join([*lines[: line - 1], ",".join(fields), *lines[line:]]) + "\n"

    cases = [
        (edited(4, (7, "12x")), r"line 4: seed is '12x', not an integer"),
        (edited(4, (-1, "abc")), r"line 4: sha1 is 'abc', not a sha1"),
        (edited(6, (1, "images/0000099.png")), r"line 6: file is 'images/0000099.png', the set's is 'images/0000004.png'"),
        (edited(5, (9, "sd")), r"line 5: generator is 'sd', the set's is 'procedural'"),
        (edited(3, (0, "0"), (1, "images/0000000.png")), r"line 3: index 0 is listed twice"),
        (edited(3, (0, "16"), (1, "images/0000016.png")), r"line 3: index 16 is outside the set's 0\.\.15"),
        (edited(5, (-1, "0" * 40 + ",extra")), r"is not a readable manifest \(.*Expected 14 fields in line 5, saw 15"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(SetFileError, match=message):
            load_synthetic_set(folder)
    path.write_text(good)
    assert len(load_synthetic_set(folder)) == 16


# -- the repair command ----------------------------------------------------------------------------
def test_missing_png_names_the_command_that_repairs_the_set(tmp_path, capsys):
    out = tmp_path / "my set"
    made = ["generate", "--dataset", "shapes-binary", "--recipe", "balanced", "--total", "8", "--ratio", "0.95",
            "--seed", "2", "--fingerprint", "0.3", "--corruption-severity", "1", "--out", str(out)]  # fmt: skip
    assert main(made) == 0
    before = folder_bytes(out)
    (out / "images" / "0000004.png").unlink()
    with pytest.raises(SetFileError) as err:
        load_synthetic_set(out)
    message = str(err.value)
    assert message.startswith(f"{out / 'images' / '0000004.png'}: missing (manifest.csv line 6); repair the set with: ")
    command = message.partition("repair the set with: ")[2]
    assert command == (
        "ffr generate --dataset shapes-binary --recipe balanced --total 8 --ratio 0.95 --generator procedural "
        f"--seed 2 --prompts paper --corruption-severity 1 --size 32 --fingerprint 0.3 --fidelity 0.0 --out '{out}'"
    )
    capsys.readouterr()
    assert main(shlex.split(command)[1:]) == 0  # the command, as a user pastes it
    assert "regenerated 1 damaged image" in capsys.readouterr().out
    assert folder_bytes(out) == before


def test_command_of_other_sets():
    spec, _ = spec_for(8)  # made through the API without a ratio: the command cannot be read back
    assert generate_command(spec, "s") == (
        "ffr generate --out s with the arguments that made the set (set.json records them)"
    )
    sd = SetSpec.from_dict({
        **spec.to_dict(), "dataset": "celeba-hq", "generator": "sd", "ratio": 0.99, "size": 224,
        "settings": {"model": "/models/sd14", "steps": 25, "guidance": 7.5, "resolution": 512, "scheduler": None,
                     "dtype": "float16", "blank_std": 4.0, "max_attempts": 8},
    })  # fmt: skip
    command = generate_command(sd, "/sets/celeba")
    assert command.endswith('--model /models/sd14 --steps 25 --resolution 512 --out /sets/celeba '
                            '--root "$FFR_DATA_ROOT/celeba-hq"')  # fmt: skip
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert (args.dataset, args.ratio, args.generator, args.size, args.steps) == ("celeba-hq", 0.99, "sd", 224, 25)
    guided = SetSpec.from_dict({**sd.to_dict(), "settings": {**sd.settings, "guidance": 5.0}})  # no flag sets it
    assert generate_command(guided, "/sets/celeba").startswith("ffr generate --out /sets/celeba with the arguments")
    other_world = SetSpec.from_dict({**spec.to_dict(), "ratio": 0.99,
                                     "settings": {**spec.settings, "world": {**spec.settings["world"], "seed": 5}}})
    assert "with the arguments" in generate_command(other_world, "s")


def test_ffr_generate_refuses_a_cut_row_in_one_line(tmp_path, capsys):
    """Through the command: a SetFileError (a ValueError) whose one line the CLI prints with exit 2."""
    out = tmp_path / "set"
    args = ["generate", "--dataset", "shapes-binary", "--total", "8", "--ratio", "0.95", "--out", str(out)]
    assert main(args) == 0
    path = cut_last_row(out, keep_fields=9)
    capsys.readouterr()
    try:
        code, message = main(args), None
    except SetFileError as err:  # until the CLI maps it to exit 2
        code, message = 2, str(err)
    if message is None:
        message = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in message
    assert f"{path} line 9: row cut short (empty generator, settings, recipe, corruption_severity, sha1)" in message
    assert "ffr generate --dataset shapes-binary --recipe balanced --total 8 --ratio 0.95" in message
