"""Prompt sets per dataset, read from the editable data file prompts.yaml.

Three sets per dataset: `paper` (`A photo of {bias} {class}`), `agnostic` (`A photo of {class}`,
ECCV table 5) and `official` (richer phrasings in the manner of the authors' code). A prompt is
drawn per image from the set's phrase lists with a seed, so a set's prompts are reproducible;
the manifest of a synthetic set records each one.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

PROMPTS_FILE = Path(__file__).with_name("prompts.yaml")
PROMPT_SETS = ("paper", "agnostic", "official")
UNKNOWN_BIAS = -1  # b of a class-only request whose bias the generator does not report


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass(frozen=True)
class PromptSet:
    """One prompt set of one dataset (see prompts.yaml for the fields)."""

    dataset: str
    name: str
    template: str | None  # names class and bias; None = this set never names the bias
    class_only: str | None  # names the class only
    class_words: tuple[tuple[str, ...], ...]  # per class, phrases for {class} in template
    bias_words: tuple[tuple[str, ...], ...]  # per bias, phrases for {bias}
    class_only_words: tuple[tuple[str, ...], ...]  # per class, phrases for {class} in class_only

    def prompts(self, y: np.ndarray, b: np.ndarray | None, seed: int) -> list[str]:
        """One prompt per request: y int (N,), b int (N,) with UNKNOWN_BIAS (or b None) for a
        class-only request. Phrase choices depend only on (seed, position)."""
        y = np.asarray(y, dtype=np.int64)
        b = np.full(len(y), UNKNOWN_BIAS, dtype=np.int64) if b is None else np.asarray(b, dtype=np.int64)
        rng = np.random.default_rng([int(seed), 0x9A0])
        u_class, u_bias = rng.random(len(y)), rng.random(len(y))
        out = []
        for i, (yi, bi) in enumerate(zip(y.tolist(), b.tolist())):
            if bi == UNKNOWN_BIAS:
                if self.class_only is None:
                    raise ValueError(f"prompt set {self.name!r} of {self.dataset!r} has no class_only prompt")
                words = self.class_only_words[yi]
                out.append(self.class_only.format(**{"class": words[int(u_class[i] * len(words))]}))
            else:
                if self.template is None:
                    raise ValueError(
                        f"prompt set {self.name!r} of {self.dataset!r} never names the bias (no template), "
                        "so it cannot make a (class, bias) image; use it with recipe 'agnostic'"
                    )
                cw, bw = self.class_words[yi], self.bias_words[bi]
                out.append(
                    self.template.format(
                        **{"class": cw[int(u_class[i] * len(cw))], "bias": bw[int(u_bias[i] * len(bw))]}
                    )
                )
        return out


@dataclass(frozen=True)
class DatasetPrompts:
    """The prompt entry of one dataset."""

    dataset: str
    class_names: tuple[str, ...]
    bias_names: tuple[str, ...]
    sd_steps: int  # Stable Diffusion's default number of steps for this dataset
    sets: dict[str, PromptSet]

    def get(self, name: str) -> PromptSet:
        if name not in self.sets:
            raise KeyError(f"unknown prompt set {name!r} for {self.dataset!r}; known: {', '.join(self.sets)}")
        return self.sets[name]

    def check_names(self, class_names: Sequence[str], bias_names: Sequence[str], path: Path = PROMPTS_FILE) -> None:
        """Refuse a dataset whose class or bias order differs from the prompt file's."""
        for kind, ours, theirs in (("class", self.class_names, class_names), ("bias", self.bias_names, bias_names)):
            if [_norm(n) for n in ours] != [_norm(n) for n in theirs]:
                raise ValueError(
                    f"{path}: {self.dataset} lists {kind}_names {list(ours)} but the dataset has "
                    f"{list(theirs)}; edit the file so that prompts follow the dataset's order"
                )


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def _word_lists(where: str, value, n: int) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, list) and v for v in value):
        raise ValueError(f"{where} must be a list of {n} non-empty lists of phrases, got {value!r}")
    return tuple(tuple(str(w) for w in v) for v in value)


def _parse_set(where: str, dataset: str, name: str, raw: dict, n_classes: int, n_biases: int) -> PromptSet:
    template, class_only = raw.get("template"), raw.get("class_only")
    if template is None and class_only is None:
        raise ValueError(f"{where}: needs a template or a class_only prompt")
    if template is not None and _fields(template) != {"class", "bias"}:
        raise ValueError(f"{where}.template must use the fields {{class}} and {{bias}}, got {template!r}")
    if class_only is not None and _fields(class_only) != {"class"}:
        raise ValueError(f"{where}.class_only must use the field {{class}} only, got {class_only!r}")
    class_words = _word_lists(f"{where}.class", raw.get("class"), n_classes)
    bias_words = _word_lists(f"{where}.bias", raw["bias"], n_biases) if template is not None else ()
    class_only_words = (
        _word_lists(f"{where}.class_only_class", raw["class_only_class"], n_classes)
        if "class_only_class" in raw
        else class_words
    )
    unknown = set(raw) - {"template", "class_only", "class", "bias", "class_only_class"}
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    return PromptSet(dataset, name, template, class_only, class_words, bias_words, class_only_words)


def load_prompts(dataset: str, path: str | Path | None = None) -> DatasetPrompts:
    """The prompt sets of `dataset` from `path` (default: the package's prompts.yaml)."""
    path = Path(path) if path is not None else PROMPTS_FILE
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if dataset not in data:
        raise KeyError(f"{path} has no prompts for dataset {dataset!r}; it has: {', '.join(data)}")
    entry = data[dataset]
    try:
        class_names = tuple(entry["class_names"])
        bias_names = tuple(entry["bias_names"])
        raw_sets = entry["sets"]
        steps = int(entry.get("sd_steps", 50))
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: {dataset} needs class_names, bias_names and sets ({err})") from None
    sets = {
        name: _parse_set(f"{path}: {dataset}.sets.{name}", dataset, name, raw, len(class_names), len(bias_names))
        for name, raw in raw_sets.items()
    }
    return DatasetPrompts(dataset, class_names, bias_names, steps, sets)


def make_prompts(
    dataset: str, set_name: str, y: np.ndarray, b: np.ndarray | None, seed: int, path: str | Path | None = None
) -> list[str]:
    """Prompts for requests (y, b) of `dataset` from prompt set `set_name` (b = -1 or None:
    class-only)."""
    return load_prompts(dataset, path).get(set_name).prompts(y, b, seed)
