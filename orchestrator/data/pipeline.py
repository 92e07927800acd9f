"""The data steps behind `orch data normalize|select|prepare|check`.

Each step reads files and writes new ones (atomically) plus a stats file that
says what it did and what it dropped, and why.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import inputs
from orchestrator.data import formats
from orchestrator.data.clean import CleanStats, clean_dialogue, deduplicate
from orchestrator.data.dialogue import Dialogue, dialogue_of, windows
from orchestrator.data.sft import sft_row, stratified_split, write_jsonl, write_set
from orchestrator.datasets import check_rows
from orchestrator.errors import OrchError
from orchestrator.fileio import write_json_atomic
from orchestrator.inputs import InputError
from orchestrator.task import Task

Progress = Callable[[str], None]

DEFAULT_SELECT = {
    "topics": [],
    "keywords": [
        "学习",
        "考试",
        "学校",
        "成绩",
        "老师",
        "同学",
        "室友",
        "宿舍",
        "家人",
        "父母",
        "作业",
        "毕业",
        "升学",
        "高考",
        "考研",
        "大学",
        "高中",
        "初中",
        "班级",
        "学业",
    ],
    "min_assistant_chars": 80,
    "max_chars": 2000,
    "max_turns": 12,
    "max_windows": 1,  # > 1: a long dialogue becomes up to this many windows, each labeled on its own text
}


def _distribution(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "p50": statistics.median(ordered),
        "p95": ordered[int(0.95 * (len(ordered) - 1))],
        "max": ordered[-1],
        "mean": round(statistics.fmean(ordered), 1),
    }


def describe(dialogues: list[Dialogue]) -> dict[str, Any]:
    """Counts per source and topic, turn and length distributions."""
    return {
        "dialogues": len(dialogues),
        "by_source": dict(Counter(d.source for d in dialogues)),
        "by_topic": dict(Counter(d.topic or "unknown" for d in dialogues)),
        "turns": _distribution([len(d.turns) for d in dialogues]),
        "chars": _distribution([sum(len(t.text) for t in d.turns) for d in dialogues]),
    }


def read_unified(path: Path) -> list[Dialogue]:
    """Dialogues from a unified .jsonl file (what `orch data normalize` writes)."""
    return [_dialogue(path, line) for line in inputs.read_jsonl(path)]


def _dialogue(path: Path, line: inputs.Line) -> Dialogue:
    """One unified dialogue, or an InputError naming the line and what is missing."""
    data = line.data
    problem = None
    if not isinstance(data, dict):
        problem = f"a row must be a JSON object, not a {type(data).__name__}"
    elif missing := [k for k in ("id", "source", "turns") if k not in data]:
        problem = f"missing key(s) {missing}"
    elif not isinstance(data["id"], str) or not data["id"].strip():
        problem = f"`id` must be a non-empty string, not {data['id']!r}"
    elif not isinstance(data["turns"], list) or not all(
        isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("text"), str)
        for t in data["turns"]
    ):
        problem = "`turns` must be a list of {role: user|assistant, text: ...}"
    if problem:
        raise InputError(
            path, f"not a unified dialogue: {problem}", line=line.number, fix="make the file with `orch data normalize`"
        )
    return Dialogue.from_json(data)


def write_unified(path: Path, dialogues: list[Dialogue]) -> None:
    write_jsonl(path, [d.to_json() for d in dialogues])


RAW_SUFFIXES = (".txt", ".json", ".jsonl")


def _files(sources: list[Path]) -> tuple[list[Path], list[str]]:
    """(raw files to read, files in the given folders that are not: listed, never silently skipped)."""
    files: list[Path] = []
    skipped: list[str] = []
    for source in sources:
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                if path.is_file() and path.suffix.lower() in RAW_SUFFIXES:
                    files.append(path)
                elif not path.is_dir():  # other files, upper-case twins aside, and dangling links
                    skipped.append(str(path))
        elif source.is_file():
            files.append(source)
        else:
            raise InputError(source, "no such file or folder", fix="check the path")
    if not files:
        raise OrchError(
            f"no raw files ({', '.join(RAW_SUFFIXES)}) in {', '.join(map(str, sources))}",
            fix="name the corpus files or the folders holding them",
        )
    return files, skipped


def normalize(
    sources: list[Path],
    out: Path,
    fmt: str | None = None,
    progress: Progress | None = None,
    encoding: str | None = None,
) -> dict:
    """Raw corpora -> unified, cleaned, anonymised, deduplicated dialogues, plus stats.json beside `out`.

    Every file is read through `orchestrator.inputs` (BOM, encoding); the stats say which encodings were
    used and list text left out because it had no speaker label, and files in the folders that were skipped.
    """
    _check_out(out, sources)
    stats = CleanStats()
    read_stats = formats.ReadStats()
    read_counts: Counter = Counter()
    cleaned = []
    files, skipped = _files(sources)
    for i, path in enumerate(files, start=1):
        for dialogue in formats.read(path, fmt, encoding=encoding, stats=read_stats):
            read_counts[dialogue.source] += 1
            result = clean_dialogue(dialogue, stats)
            if result is not None:
                cleaned.append(result)
        if progress and (i % 50 == 0 or i == len(files)):
            progress(f"read {i}/{len(files)} files")
    kept = deduplicate(cleaned, stats)
    if not kept:
        raise OrchError(
            f"no dialogues in {len(files)} file(s): {dict(stats.dropped) or 'nothing had speaker turns'}",
            fix="check the files' format (--format) and that turns carry speaker labels",
        )
    _check_unique_ids(kept)
    summary = {
        "files": len(files),
        "read": dict(read_counts),
        **read_stats.summary(),
        "skipped_files": skipped,
        **describe(kept),
        "dropped_dialogues": dict(stats.dropped),
        "dropped_turns": dict(stats.turns_dropped),
        "anonymized": dict(stats.placeholders),
    }
    write_unified(out, kept)
    write_json_atomic(out.with_name("stats.json"), summary)
    return summary


def _check_out(out: Path, sources: list[Path]) -> None:
    """The output must not be an input, nor inside a corpus folder (the next run would read it)."""
    target = out.resolve()
    for source in sources:
        root = source.resolve()
        if target == root or (root.is_dir() and root in target.parents):
            raise OrchError(
                f"-o {out} is inside the corpus {source}: it would overwrite or be read as raw data",
                fix="write the unified file outside the corpus folder",
            )


def _check_unique_ids(dialogues: list[Dialogue]) -> None:
    """Two different dialogues may not share an id (same-named files in two folders)."""
    first: dict[str, str] = {}
    for d in dialogues:
        where = d.meta.get("where", "?")
        if d.id in first and first[d.id] != where:
            raise OrchError(
                f"two dialogues get the id {d.id!r}: {first[d.id]} and {where}",
                fix="normalize the folders separately, or rename one of the files",
            )
        first.setdefault(d.id, where)


SELECT_TYPES = {key: type(value) for key, value in DEFAULT_SELECT.items()}  # what each default declares


def check_select_settings(settings: dict[str, Any], where: str) -> None:
    """The task file's `data.select` settings have the types `select` needs (lists of words, whole numbers)."""
    for key, value in settings.items():
        kind = SELECT_TYPES.get(key)
        if kind is None:
            raise OrchError(
                f"data.select.{key}: unknown setting", where=where, fix=f"settings: {', '.join(SELECT_TYPES)}"
            )
        bad = not isinstance(value, kind) or isinstance(value, bool)
        if kind is list and not bad:
            bad = not all(isinstance(v, str) and v for v in value)
        if bad or (kind is int and value < 1):
            shape = "a list of words" if kind is list else "a whole number >= 1"
            raise OrchError(
                f"data.select.{key}: {value!r} is not {shape}", where=where, fix=f"e.g. {DEFAULT_SELECT[key]!r}"[:80]
            )


def select(source: Path, out: Path, config: dict[str, Any]) -> dict:
    """The student-scenario subset: topic/keyword filter, quality threshold, tail truncation."""
    settings = {**DEFAULT_SELECT, **config}
    dialogues = read_unified(source)
    kept, dropped = [], Counter()
    seen: set[str] = set()
    truncated = 0
    for d in dialogues:
        text = "".join(t.text for t in d.turns)
        topical = (d.topic in settings["topics"]) or any(k in text for k in settings["keywords"])
        if (settings["topics"] or settings["keywords"]) and not topical:
            dropped["off_topic"] += 1
            continue
        answers = [len(t.text) for t in d.turns if t.role == "assistant"]
        if not answers or not any(t.role == "user" for t in d.turns):
            dropped["no_client_or_counselor_turn"] += 1
            continue
        if statistics.fmean(answers) < settings["min_assistant_chars"]:
            dropped["short_counselor_turns"] += 1
            continue
        pieces = windows(d, settings["max_chars"], settings["max_turns"], settings["max_windows"])
        truncated += len(pieces) != 1 or pieces[0].turns != d.turns
        for piece in pieces:
            key = _text_key(piece.render())
            if key in seen:  # the same text twice (a stock closing exchange): one row, never in two splits
                dropped["duplicate_window"] += 1
                continue
            seen.add(key)
            kept.append(piece)
    write_unified(out, kept)
    summary = {
        "input": len(dialogues),
        "source_dialogues": len({dialogue_of(d.id) for d in kept}),
        **describe(kept),
        "dropped": dict(dropped),
        "truncated": truncated,
        "settings": settings,
    }
    write_json_atomic(out.with_name(out.stem + ".stats.json"), summary)
    return summary


@dataclass
class Labeled:
    dialogue: Dialogue
    labels: dict[str, Any]


def read_labeled(path: Path, task: Task | None = None) -> list[Labeled]:
    """Dialogues with a `labels` object (what `orch data label` writes), checked against the task's schema."""
    out = []
    for line in inputs.read_jsonl(path):
        dialogue = _dialogue(path, line)
        labels = line.data.get("labels")
        if not isinstance(labels, dict):
            raise InputError(path, "row has no `labels` object", line=line.number, fix="run `orch data label` first")
        if not any(t.role == "user" and t.text.strip() for t in dialogue.turns):
            raise InputError(
                path,
                "the dialogue has no client turn: nothing to assess",
                line=line.number,
                fix="drop the row, or normalize the corpus again",
            )
        errors = task.answer_errors(labels) if task is not None else []
        if errors:
            raise InputError(
                path,
                f"labels break the {task.name} schema: {'; '.join(errors)}",
                line=line.number,
                fix="relabel the row, or fix the label by hand",
            )
        out.append(Labeled(dialogue, labels))
    return out


def split_fractions(task: Task, spec: str | None = None) -> dict[str, float]:
    """`train=0.8,val=0.1,test=0.1` as fractions, train first (default: 10% for each declared split but train).

    Each fraction is in (0, 1], they sum to 1, every name is a split the task declares, once, and one is train.
    """
    if not spec:
        others = [s for s in task.datasets if s != "train"]
        return {"train": 1 - 0.1 * len(others), **{s: 0.1 for s in others}}
    example = "e.g. --split " + ",".join(f"{s}={0.8 if s == 'train' else 0.1:g}" for s in task.datasets)
    fractions: dict[str, float] = {}
    for part in spec.split(","):
        name, sep, value = (x.strip() for x in part.partition("="))
        try:
            fraction = float(value)
        except ValueError:
            fraction = float("nan")
        if not sep or not name or not 0 < fraction <= 1:
            raise OrchError(
                f"--split {spec!r}: {part.strip()!r} is not NAME=FRACTION with a fraction in (0, 1]",
                fix=f"{example} (leave a split out rather than give it 0)",
            )
        if name in fractions:
            raise OrchError(f"--split {spec!r}: {name!r} is given twice", fix=example)
        if name not in task.datasets:
            raise OrchError(
                f"--split {spec!r}: task {task.name} declares no split {name!r}",
                where=str(task.path),
                fix=f"its splits: {', '.join(task.datasets)} (add one under `datasets:` to use it)",
            )
        fractions[name] = fraction
    if abs(sum(fractions.values()) - 1) > 1e-6:
        raise OrchError(f"--split {spec!r}: the fractions sum to {sum(fractions.values()):g}, not 1", fix=example)
    if "train" not in fractions:
        raise OrchError(f"--split {spec!r}: no train split", fix=example)
    return {"train": fractions.pop("train"), **fractions}


def stale_splits(task: Task, fractions: dict[str, float], project_root: Path) -> list[Path]:
    """Split files the task declares that this split would not rewrite but that exist from an earlier one."""
    return [
        project_root / task.datasets[name].file
        for name in task.datasets
        if name not in fractions and (project_root / task.datasets[name].file).exists()
    ]


def prepare(
    task: Task, labeled: Path, fractions: dict[str, float], project_root: Path, oversample: float | None = None
) -> dict:
    """The task's SFT files, split deterministically and stratified on the risk field, written as one set.

    Windows of one dialogue stay in one split (`split_by_dialogue`); train's at-risk rows are repeated up
    to the task's `data.prepare.oversample_risk` share (or `oversample`); `prepare.stats.json` beside the
    files records the counts per split and the oversampling. Nothing is written unless every split has
    rows and no split file of an earlier split would be left behind (it would overlap the new train);
    then all files are staged beside their targets and renamed.
    """
    stale = stale_splits(task, fractions, project_root)
    if stale:
        names = ", ".join(str(p) for p in stale)
        raise OrchError(
            f"{names} exist(s) from an earlier split that this one would not rewrite: they would overlap the new ones",
            fix="include those splits in --split, or move the files aside (`mv FILE FILE.old`) first",
        )
    rows = [sft_row(task, item.dialogue, item.labels) for item in read_labeled(labeled, task)]
    ids = Counter(r["id"] for r in rows)
    repeated = [i for i, n in ids.items() if n > 1]
    if repeated:
        raise OrchError(f"dialogue ids appear more than once: {repeated[:5]}", where=str(labeled))
    field = task.risk_field or task.field_names[0]
    splits = split_by_dialogue(rows, lambda r: str(json.loads(r["output"])[field]), fractions)
    empty = [name for name, split_rows in splits.items() if not split_rows]
    if empty:
        raise OrchError(
            f"split(s) {empty} would be empty: {len(rows)} labeled rows are too few for {fractions}",
            where=str(labeled),
            fix="label more dialogues, or give those splits larger fractions",
        )
    share = oversample_share(task) if oversample is None else oversample
    splits["train"], added = oversampled(task, splits["train"], share)
    files = {project_root / task.datasets[name].file: split_rows for name, split_rows in splits.items()}
    write_set(files)
    stats = {split: split_stats(task, split_rows, field) for split, split_rows in splits.items()}
    stats["oversampling"] = {"risk_share": share, "rows_added": added}
    write_json_atomic((project_root / task.datasets["train"].file).parent / PREPARE_STATS, stats)
    return stats


PREPARE_STATS = "prepare.stats.json"


def split_by_dialogue(
    rows: list[dict[str, Any]], label: Callable[[dict[str, Any]], str], fractions: dict[str, float]
) -> dict[str, list[dict[str, Any]]]:
    """A stratified split of whole dialogues: the windows of one dialogue are never in two splits.

    A dialogue's stratum is the rarest label among its windows, so a class with at least three dialogues
    lands in train, val and test (`stratified_split` gives each held-out split one when it can).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(dialogue_of(str(row["id"])), []).append(row)
    counts = Counter(label(r) for r in rows)
    units = [
        {"id": group, "stratum": min((label(r) for r in members), key=lambda c: (counts[c], c))}
        for group, members in groups.items()
    ]
    split_units = stratified_split(units, lambda u: u["stratum"], fractions)
    where = {unit["id"]: name for name, chosen in split_units.items() for unit in chosen}
    labels = {group: {label(r) for r in members} for group, members in groups.items()}
    _cover_every_split(where, labels, list(fractions), counts)
    return {
        name: sorted(
            (r for group, split in where.items() if split == name for r in groups[group]), key=lambda r: r["id"]
        )
        for name in fractions
    }


def _cover_every_split(where: dict[str, str], labels: dict[str, set[str]], names: list[str], counts: Counter) -> None:
    """Move whole dialogues so that each class found in at least one dialogue per split is in every split.

    A dialogue is stratified by its rarest label, so a class that is also in dialogues of another stratum
    can miss a split. Rarest class first, a split without it takes one of its dialogues from a split that
    has at least two (most first), choosing one whose other labels stay in the donor split; deterministic.
    """
    for cls in sorted(counts, key=lambda c: (counts[c], c)):
        holding = sorted(d for d, found in labels.items() if cls in found)
        if len(holding) < len(names):
            continue
        for target in names:
            if any(where[d] == target for d in holding):
                continue
            by_split = Counter(where[d] for d in holding)
            for donor, count in sorted(by_split.items(), key=lambda kv: (-kv[1], kv[0])):
                movable = [d for d in holding if where[d] == donor and _others_stay(d, donor, where, labels)]
                if count >= 2 and movable:
                    where[min(movable, key=_bucket_of)] = target
                    break


def _others_stay(dialogue: str, split: str, where: dict[str, str], labels: dict[str, set[str]]) -> bool:
    """Whether every label of `dialogue` is also in another dialogue of `split` (moving it loses none)."""
    rest = set().union(*(labels[d] for d, s in where.items() if s == split and d != dialogue))
    return labels[dialogue] <= rest


def _bucket_of(dialogue: str) -> str:
    return hashlib.sha256(dialogue.encode("utf-8")).hexdigest()


def oversample_share(task: Task) -> float:
    """The task file's `data.prepare.oversample_risk`: the share of train rows at risk to reach (0: none)."""
    settings = (task.raw.get("data") or {}).get("prepare") or {}
    where = str(task.path)
    if not isinstance(settings, dict):
        raise OrchError("`data.prepare` must be a mapping of settings", where=where)
    unknown = set(settings) - {"oversample_risk"}
    if unknown:
        raise OrchError(
            f"data.prepare.{sorted(unknown)[0]}: unknown setting", where=where, fix="settings: oversample_risk"
        )
    share = settings.get("oversample_risk", 0)
    check_share(task, share, where)
    return float(share)


MAX_SHARE = 0.5  # at-risk rows never outnumber the others: train at most doubles, the majority stays the majority


def check_share(task: Task, share: Any, where: str, key: str = "data.prepare.oversample_risk") -> None:
    """An oversampling share is a number in [0, MAX_SHARE), and needs a task with a risk field."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < MAX_SHARE:
        raise OrchError(
            f"{key}: {share!r} is not a share in [0, {MAX_SHARE:g})",
            where=where,
            fix="e.g. 0.25 (at-risk rows repeated until they are a quarter of train), 0 for none; at-risk rows "
            "that outnumber the others would make them the label prior",
        )
    if share and not task.has_risk:
        raise OrchError(f"{key} needs a `risk:` field in the task", where=where, fix="drop it, or 0")


def oversampled(task: Task, train: list[dict[str, Any]], share: float) -> tuple[list[dict[str, Any]], int]:
    """Train with its at-risk rows repeated (ids `<id>#r<k>`) until they are `share` of it; rows added.

    Deterministic: whole rounds of every at-risk row in id order, then the first ones of one more round.
    """
    if not share or not task.has_risk:
        return train, 0
    at_risk = [r for r in train if task.at_risk(json.loads(r["output"]))]
    others = len(train) - len(at_risk)
    needed = math.ceil(share * others / (1 - share) - 1e-9) - len(at_risk)
    if not at_risk or needed <= 0:
        return train, 0
    extra = [
        {**at_risk[i % len(at_risk)], "id": f"{at_risk[i % len(at_risk)]['id']}#r{i // len(at_risk) + 1}"}
        for i in range(needed)
    ]
    return sorted(train + extra, key=lambda r: r["id"]), needed


def split_stats(task: Task, rows: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """Rows, dialogues, and the stratifying field's counts (in rows and in dialogues) of one split."""
    answers = [(dialogue_of(str(r["id"])), json.loads(r["output"])) for r in rows]
    out: dict[str, Any] = {
        "rows": len(rows),
        "dialogues": len({d for d, _ in answers}),
        field: dict(sorted(Counter(a[field] for _, a in answers).items(), key=lambda kv: str(kv[0]))),
    }
    if task.has_risk:
        out["at_risk_dialogues"] = len({d for d, a in answers if task.at_risk(a)})
    return out


def model_cutoff(catalog: Any, model: str, method: str, task: Task) -> tuple[Path, str, int]:
    """(tokenizer folder, chat template, cutoff_len) of a model's training config, for `check`."""
    from orchestrator.models import resolve_model
    from orchestrator.render import render_run

    catalog.check_model(model)
    from orchestrator.stages import TRAINING

    values = render_run(catalog, model, method, task, stages=(TRAINING,))[TRAINING].values
    resolved = resolve_model(catalog.project, str(values["model_name_or_path"]))
    if resolved.path is None:
        raise OrchError(f"{model}'s tokenizer is not available here", fix=resolved.download_hint(catalog.project))
    return resolved.path, str(values["template"]), int(values.get("cutoff_len", 2048))


def check(task: Task, files: list[Path], cutoff: tuple[Path, str, int] | None = None) -> dict:
    """Every bad row with its line, label distributions, duplicates, and overlap between files.

    `cutoff` = (model dir, LLaMA-Factory template, cutoff_len) also flags rows whose answer the model's
    cutoff would cut, counted exactly as LLaMA-Factory truncates.
    """
    report: dict[str, Any] = {"files": {}, "overlap": {}}
    seen: dict[Path, list[set[str]]] = {}
    for path in files:
        rows, problems = check_rows(path, None, task)
        texts = [str(r.data.get("input", "")) for r in rows]
        problems_out = [{"where": p.where, "message": p.message} for p in problems]
        for row in rows:
            if not str(row.data.get("input", "")).strip():
                problems_out.append({"where": f"{path}:{row.line}", "message": "empty input (no dialogue)"})
        if not rows and not problems_out:
            problems_out.append({"where": str(path), "message": "no rows"})
        distribution = {}
        for name in task.field_names:
            values = []
            for row in rows:
                try:
                    values.append(json.loads(row.data["output"]).get(name))
                except (json.JSONDecodeError, AttributeError, TypeError):
                    continue
            distribution[name] = {str(k): v for k, v in sorted(Counter(values).items(), key=lambda kv: str(kv[0]))}
        if cutoff is not None:
            problems_out += _too_long(rows, path, *cutoff)
        duplicates = sum(n - 1 for n in Counter(texts).values() if n > 1)
        report["files"][str(path)] = {
            "rows": len(rows),
            "problems": problems_out,
            "labels": distribution,
            "duplicate_inputs": duplicates,
        }
        seen[path] = [_row_keys(r.data) for r in rows]
    paths = list(seen)
    for i, a in enumerate(paths):
        keys_a = set().union(*seen[a]) if seen[a] else set()
        for b in paths[i + 1 :]:
            shared = sum(1 for keys in seen[b] if keys & keys_a)
            if shared:
                report["overlap"][f"{a} & {b}"] = shared
    report["ok"] = not report["overlap"] and all(not f["problems"] for f in report["files"].values())
    return report


def _text_key(text: str) -> str:
    """A text as compared for duplicates: NFKC-normalized, whitespace removed."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def _row_keys(row: dict[str, Any]) -> set[str]:
    """What makes two rows the same example: the same input (whitespace aside) or the same id."""
    keys = {"input:" + _text_key(str(row.get("instruction", "")) + str(row.get("input", "")))}
    if isinstance(row.get("id"), (str, int)):
        keys.add(f"id:{row['id']}")
    return keys


def _too_long(rows: list, path: Path, model_dir: Path, template: str, cutoff_len: int) -> list[dict[str, str]]:
    from orchestrator import lf_adapter as lf
    from orchestrator.validation.lengths import pair_lengths

    pairs, efficient_eos = pair_lengths(model_dir, template, path, None)
    infer_seqlen = lf.infer_seqlen()
    out = []
    for row, (prompt_len, answer_len) in zip(rows, pairs, strict=True):
        _, kept = infer_seqlen(prompt_len, answer_len, cutoff_len - int(efficient_eos))
        if kept < answer_len:
            out.append(
                {
                    "where": f"{path}:{row.line}",
                    "message": f"too long for the model's cutoff: {prompt_len} + {answer_len} tokens, "
                    f"cutoff_len {cutoff_len} cuts the answer",
                }
            )
    return out
