"""Notebook parameters checked against the parameters cell's hints and stated ranges, before any
kernel starts: the issue's examples on the repository's notebooks, the type rules on a fixture."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ffr_lib import notebooks as N
from ffr_lib.cli import main
from ffr_lib.notebook_parameters import HintError, parse_comment, read_parameters

REPO_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize(("name", "value", "line"), [
    ("ratios", "0.99", "-p ratios: 01_theorem_sanity_check parameter ratios is list[float] (>= 0.5 and < 1); "
                       "got 0.99 (float)"),
    ("layouts", "5", "-p layouts: 01_theorem_sanity_check parameter layouts is list[str] (binary | animals); "
                     "got 5 (int)"),
    ("table1_ratio", "abc", "-p table1_ratio: 04_mitigation_combinations parameter table1_ratio is float "
                            "(>= 0.5 and < 1); got 'abc' (str)"),
    ("threads", "two", "-p threads: 03_ffr_ablations parameter threads is int (>= 1); got 'two' (str)"),
    ("run_missing", "maybe", "-p run_missing: 03_ffr_ablations parameter run_missing is bool; got 'maybe' (str)"),
    ("ratios", "[0.9, 1.5]", "-p ratios: 01_theorem_sanity_check parameter ratios is list[float] (>= 0.5 and < 1); "
                             "item 1.5 is not < 1"),
    ("layouts", "[binary, cube]", "-p layouts: 01_theorem_sanity_check parameter layouts is list[str] "
                                  "(binary | animals); item 'cube' is not one of them"),
    ("threads", "true", "-p threads: 03_ffr_ablations parameter threads is int (>= 1); got True (bool)"),
    ("workers", "0", "-p workers: 03_ffr_ablations parameter workers is int (>= 1); got 0, which is not >= 1"),
])
def test_the_issues_examples_are_one_line_exit_2(capsys, tmp_path, name, value, line):
    assert main(["notebooks", "-p", name, value, "--out", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert err == f"ffr notebooks: {line}\n" and out == ""  # no notebook started
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_good_values_pass_and_reach_the_runs(tmp_path):
    runs = N.plan("quick", only=["01", "04"], parameters={"ratios": [0.9, 0.99], "table1_ratio": 0.95, "threads": 2},
                  out=tmp_path, source=REPO_NOTEBOOKS)
    cpu = {"profile": "quick", "figures_dir": "../outputs/cpu/figures"}  # quick.yaml's "*": the CPU retrain's folder
    quick_04 = {"sweep_profile": "quick", "results_dir": "../outputs/cpu/results", "fallback": False, "run_missing": True}
    assert [(r.source.stem, r.parameters) for r in runs] == [
        ("01_theorem_sanity_check", {**cpu, "ratios": [0.9, 0.99]}),
        ("04_mitigation_combinations", {**cpu, **quick_04, "table1_ratio": 0.95, "threads": 2}),
    ]


def test_repository_notebooks_declare_checkable_parameters_whose_defaults_fit():
    for path in N.discover(REPO_NOTEBOOKS):
        declared = read_parameters(path)
        assert declared, path.name
        for p in declared.values():
            assert p.problem(p.default) is None, (path.name, p.name, p.default, p.expected)


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "nb"
    (src / "profiles").mkdir(parents=True)
    params = "\n".join([
        "r: float = 0.5  # a rate",
        "n: int = 3  # a count, >= 1",
        "flag: bool = False  # on or off",
        "xs: list[float] = [1.0]  # numbers in [0, 10]",
        "tags: list[str] = ['a']  # a | b: tags",
        "opt: int | None = None  # optional count",
        "table: dict[str, int] = {}  # name -> count",
        "ratio: float = 0.9  # in [0.5, 1)",
        "anything = 1  # no hint: any value",
    ])
    nb = new_notebook(cells=[new_code_cell(params, metadata={"tags": ["parameters"]}), new_code_cell("pass")])
    nbformat.write(nb, src / "01_typed.ipynb")
    (src / "profiles" / "quick.yaml").write_text("01_typed: {}\n")
    return src


@pytest.mark.parametrize(("name", "value"), [
    ("r", 1), ("r", 0.25), ("n", 1), ("flag", True), ("xs", [1, 2.5, 10]), ("xs", []), ("tags", ["b", "a"]),
    ("opt", None), ("opt", 4), ("table", {"a": 1}), ("ratio", 0.5), ("anything", "x"), ("anything", [1]),
])
def test_values_that_fit(folder, tmp_path, name, value):
    runs = N.plan("quick", parameters={name: value}, out=tmp_path, source=folder)
    assert runs[0].parameters == {name: value}


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("r", True, "is float; got True (bool)"),  # a bool is not a number here
    ("r", "0.5", "is float; got '0.5' (str)"),
    ("n", 2.0, "is int (>= 1); got 2.0 (float)"),  # a float is not an int
    ("n", False, "is int (>= 1); got False (bool)"),
    ("n", 0, "is int (>= 1); got 0, which is not >= 1"),
    ("flag", 1, "is bool; got 1 (int)"),
    ("flag", "yes please", "is bool; got 'yes please' (str)"),
    ("xs", 1.0, "is list[float] (>= 0 and <= 10); got 1.0 (float)"),
    ("xs", [1, "a"], "is list[float] (>= 0 and <= 10); item 1: got 'a' (str)"),
    ("xs", [1, 11], "is list[float] (>= 0 and <= 10); item 11 is not <= 10"),
    ("tags", ["a", "c"], "is list[str] (a | b); item 'c' is not one of them"),
    ("opt", "x", "is int | None; got 'x' (str)"),
    ("table", {"a": "b"}, "is dict[str, int]; entry 'a': got 'b' (str)"),
    ("table", [1], "is dict[str, int]; got [1] (list)"),
    ("ratio", 1.0, "is float (>= 0.5 and < 1); got 1.0, which is not < 1"),
    ("ratio", float("nan"), "is float (>= 0.5 and < 1); got nan, which is not a number"),
])
def test_values_that_do_not_fit_name_the_parameter(folder, tmp_path, name, value, problem):
    with pytest.raises(N.ParameterError) as info:
        N.plan("quick", parameters={name: value}, out=tmp_path, source=folder)
    assert str(info.value) == f"-p {name}: 01_typed parameter {name} {problem}"


def test_profile_and_file_values_are_checked_and_named(folder, tmp_path):
    (folder / "profiles" / "bad.yaml").write_text("01_typed: {n: two}\n")
    with pytest.raises(N.ParameterError) as info:
        N.plan("bad", out=tmp_path, source=folder)
    assert str(info.value) == f"{folder}/profiles/bad.yaml: 01_typed parameter n is int (>= 1); got 'two' (str)"
    params = tmp_path / "p.yaml"
    params.write_text("flag: maybe\n")
    with pytest.raises(N.ParameterError) as info:
        N.plan("quick", params_file=params, out=tmp_path / "o", source=folder)
    assert str(info.value) == f"{params}: 01_typed parameter flag is bool; got 'maybe' (str)"
    params.write_text("'*': {ratio: 0.2}\n")
    with pytest.raises(N.ParameterError, match=r"p.yaml: 01_typed parameter ratio .*got 0.2, which is not >= 0.5$"):
        N.plan("quick", params_file=params, out=tmp_path / "o", source=folder)


def test_later_sources_win_and_are_the_ones_checked(folder, tmp_path):
    (folder / "profiles" / "quick.yaml").write_text("'*': {n: 2}\n01_typed: {n: 5}\n")
    params = tmp_path / "p.yaml"
    params.write_text("n: 6\n01_typed: {n: 7}\n")
    runs = N.plan("quick", params_file=params, out=tmp_path / "o", source=folder)
    assert runs[0].parameters == {"n": 7}  # profile "*" < profile[stem] < file plain < file[stem]
    runs = N.plan("quick", params_file=params, parameters={"n": 8}, out=tmp_path / "o", source=folder)
    assert runs[0].parameters == {"n": 8}  # < -p


@pytest.mark.parametrize(("comment", "choices", "bounds"), [
    ("quick | paper: the profile these values stand for", ("quick", "paper"), ()),
    ("cpu | cuda | auto (cuda when there is one)", ("cpu", "cuda", "auto"), ()),
    ("bias ratio of ICLR table 1, in [0.5, 1) (the paper's is 0.999; the quick profile stops at 0.99)", (),
     ((">=", 0.5), ("<", 1.0))),
    ("detectable artifacts in [0, 1] (SD_LIKE)", (), ((">=", 0.0), ("<=", 1.0))),
    ("in (0, 1e-2]", (), ((">", 0.0), ("<=", 0.01))),
    ("(>= 1) CPU training in this many processes of `threads` threads each (both cores of a 2-core machine)", (),
     ((">=", 1.0),)),
    ("Adam lr (> 0; FFR: both stages)", (), ((">", 0.0),)),
    ("records are in <results_dir>/<sweep_profile>/runs/", (), ()),
    ("a rate -> 3 or so", (), ()),
    ("the quick profile stops at 0.99", (), ()),
])
def test_parse_comment(comment, choices, bounds):
    assert parse_comment(comment) == (choices, bounds)


def test_unreadable_parameters_cells_are_named(tmp_path):
    for source, message in (("x: set = {1}  # a set", "01_x.ipynb: parameter x: type hint `set` cannot be checked"),
                            ("x: int = 1 + 1  # a sum", "01_x.ipynb: parameter x: default `1 + 1` is not a literal")):
        nb = new_notebook(cells=[new_code_cell(source, metadata={"tags": ["parameters"]})])
        nbformat.write(nb, tmp_path / "01_x.ipynb")
        with pytest.raises(HintError) as info:
            read_parameters(tmp_path / "01_x.ipynb")
        assert str(info.value).startswith(message)
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), tmp_path / "01_x.ipynb")
    assert read_parameters(tmp_path / "01_x.ipynb") == {}  # no tagged cell: nothing declared


def test_papermill_parses_every_parameter_and_at_least_is_a_bound():
    """A parameter line with a second '=' (a `>=` in its comment) is one papermill cannot parse:
    it warns on every run and leaves the parameter out of --help-notebook."""
    import logging

    from papermill.inspection import _infer_parameters
    from papermill.iorw import load_notebook_node


    for path in sorted(REPO_NOTEBOOKS.glob("*.ipynb")):
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger("papermill").addHandler(handler)
        try:
            inferred = _infer_parameters(load_notebook_node(str(path)))
        finally:
            logging.getLogger("papermill").removeHandler(handler)
        assert not records, (path.name, [r.getMessage() for r in records])
        assert {p.name for p in inferred} == set(read_parameters(path)), path.name
    assert parse_comment("threads (at least 1), at most 8")[1] == ((">=", 1.0), ("<=", 8.0))
