"""Scoring at the hardware's floor, exactly: the fast constrained decoder against a naive one.

The naive scorer runs one full forward per candidate value, with no cache, no shared prefix and no tree;
the fast one (shared-prefix cache, one forward per field with every candidate in a tree) must pick the
same values with the same probabilities (to 1e-4), on the tiny model and on the real SmolLM2.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_ID
from tinymodels import tiny_windowed_mistral

from orchestrator.evaluation import decoding
from orchestrator.evaluation.prompts import load_template, prompt_ids


def load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(path))


@torch.no_grad()
def naive(model, tokenizer, task, prompt: list[int]) -> tuple[dict, dict]:
    """One candidate at a time, each a fresh forward over prompt + answer so far + candidate."""
    chosen, probs, answer = {}, {}, []
    names = task.field_names
    for index, name in enumerate(names):
        answer += tokenizer.encode(decoding._key_piece(index, name), add_special_tokens=False)
        values = task.field_values(name)
        pieces = [
            tokenizer.encode(decoding._value_piece(v, index == len(names) - 1), add_special_tokens=False)
            for v in values
        ]
        scores = []
        for piece in pieces:
            ids = torch.tensor([prompt + answer + piece])
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            start = len(prompt) + len(answer)
            scores.append(sum(float(logp[start - 1 + t, piece[t]]) for t in range(len(piece))))
        weights = torch.softmax(torch.tensor(scores), 0)
        best = int(torch.tensor(scores).argmax())
        chosen[name] = values[best]
        probs[name] = {str(v): float(w) for v, w in zip(values, weights, strict=True)}
        answer += pieces[best]
    return chosen, probs


def rows_of(catalog, count: int, max_chars: int | None = None) -> list[dict]:
    lines = (catalog.project.root / "data/student_mental/test.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(x) for x in lines[:count]]
    if max_chars:
        for row in rows:
            row["input"] = row["input"][:max_chars]
    return rows


def assert_exact(model, tokenizer, task, prompts):
    prefix = decoding.SharedPrefix(model, decoding.common_prefix(prompts))
    assert len(prefix) > 20, "the prompts share the chat header and the instruction"
    fast = decoding.constrained(model, tokenizer, task, prompts, prefix)
    for prompt, got in zip(prompts, fast, strict=True):
        labels, probs = naive(model, tokenizer, task, prompt)
        assert got.labels == labels
        for name in task.field_names:
            for value, p in probs[name].items():
                assert got.probabilities[name][value] == pytest.approx(p, abs=1e-4), (name, value)


def test_fast_scorer_equals_naive_on_the_tiny_model(catalog, model_cache):
    model, tokenizer = load(model_cache / TINY_ID)
    template = load_template(tokenizer, "qwen3_nothink")
    prompts = [prompt_ids(template, tokenizer, r) for r in rows_of(catalog, 5)]
    assert len({len(p) for p in prompts}) > 1  # padding inside the batch
    assert_exact(model, tokenizer, catalog.task(), prompts)


def test_fast_scorer_equals_naive_on_smollm2(catalog, smollm2_dir):
    model, tokenizer = load(smollm2_dir)
    template = load_template(tokenizer, "smollm2")
    prompts = [prompt_ids(template, tokenizer, r) for r in rows_of(catalog, 3, max_chars=200)]
    assert_exact(model, tokenizer, catalog.task(), prompts)


class CountingModel(torch.nn.Module):
    """The model, counting its forward calls."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.calls = model, 0

    @property
    def config(self):
        return self.inner.config

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


def test_one_forward_per_field_after_the_shared_prefix(catalog, model_cache):
    model, tokenizer = load(model_cache / TINY_ID)
    task = catalog.task()
    template = load_template(tokenizer, "qwen3_nothink")
    prompts = [prompt_ids(template, tokenizer, r) for r in rows_of(catalog, 4)]
    prefix = decoding.SharedPrefix(model, decoding.common_prefix(prompts))
    counting = CountingModel(model)
    decoding.constrained(counting, tokenizer, task, prompts, prefix)
    assert counting.calls == len(task.field_names)  # the prompt's own part rides with the first field


def test_the_shared_prefix_cache_gives_the_same_next_token_distribution(catalog, model_cache):
    model, tokenizer = load(model_cache / TINY_ID)
    template = load_template(tokenizer, "qwen3_nothink")
    prompts = [prompt_ids(template, tokenizer, r) for r in rows_of(catalog, 3)]
    prefix = decoding.SharedPrefix(model, decoding.common_prefix(prompts))
    batch = decoding._Batch(model, prefix, len(prompts), decoding._pad_id(tokenizer))
    with torch.no_grad():
        cached, _ = batch.step([p[len(prefix) :] for p in prompts], [])
        for row, prompt in enumerate(prompts):
            plain = torch.log_softmax(model(input_ids=torch.tensor([prompt])).logits[0, -1].float(), -1)
            assert torch.allclose(cached[row], plain, atol=1e-4)


def test_length_sorted_batches_cover_every_prompt_once_longest_first():
    prompts = [[1] * n for n in (5, 9, 2, 9, 7, 1, 3)]
    batches = decoding.length_sorted_batches(prompts, 3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(prompts)))
    assert [len(prompts[i]) for i in flat] == sorted((len(p) for p in prompts), reverse=True)
    assert [len(b) for b in batches] == [3, 3, 1]


def test_batch_size_follows_free_memory(model_cache):
    model, _ = load(model_cache / TINY_ID)
    small = decoding.auto_batch_size(model, 1000, free_bytes=10 * 2**20)
    large = decoding.auto_batch_size(model, 1000, free_bytes=64 * 2**30)
    assert 1 <= small < large <= decoding.MAX_BATCH


@pytest.mark.parametrize(
    ("text", "closed"),
    [
        ('{"a": 1}', True),
        ('Sure! {"a": "}"} and more', True),
        ('{"a": {"b": 1}', False),
        ('{"a": "\\"}"', False),
        ("no json", False),
        ('```json\n{"a": 1}\n```', True),
    ],
)
def test_free_generation_stops_when_the_object_closes(text, closed):
    assert decoding.json_closed(text) is closed


def test_length_sorted_batches_come_back_in_the_splits_order(catalog, model_cache):
    """Batches run longest first; every decoding lands on its own prompt, whatever the batch size."""
    from orchestrator.evaluation.evaluate import _decode_all

    model, tokenizer = load(model_cache / TINY_ID)
    task = catalog.task()
    template = load_template(tokenizer, "qwen3_nothink")
    prompts = [prompt_ids(template, tokenizer, r) for r in rows_of(catalog, 7)]
    assert sorted(prompts, key=len, reverse=True) != prompts  # the split is not already in batch order
    alone = [decoding.constrained(model, tokenizer, task, [p])[0].labels for p in prompts]
    for size in (2, 3):
        got = _decode_all(model, tokenizer, task, prompts, ("constrained",), 8, size, None)["constrained"]
        assert [d.labels for d in got] == alone


def copying_prompts(tokenizer, task) -> list[list[int]]:
    """Few-shot prompts after which greedy decoding writes a canonical answer (so its draft is accepted)."""
    answers = [
        task.canonical_answer({"depression_level": d, "anxiety_level": 2, "risk_flag": r, "student_distress_score": 3})
        for d, r in ((1, "none"), (2, "suicidal"))
    ]
    out = []
    for k, answer in enumerate(answers):
        shots = "".join(f"Dialogue {j}: hello there {j}\nLabels:\n{answer}\n\n" for j in range(3))
        out.append(tokenizer.encode(shots + f"Dialogue 9: word {'x' * k}\nLabels:\n"))
    return out


@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_free_output_from_drafts_equals_token_by_token_generation(
    catalog, model_cache, smollm2_dir, which, monkeypatch
):
    """The constrained answer as a draft: accepted only where greedy decoding writes exactly it, else generated."""
    path, name = (model_cache / TINY_ID, "qwen3_nothink") if which == "tiny" else (smollm2_dir, "smollm2")
    model, tokenizer = load(path)
    task = catalog.task()
    template = load_template(tokenizer, name)
    prompts = copying_prompts(tokenizer, task) + [prompt_ids(template, tokenizer, r) for r in rows_of(catalog, 2, 80)]
    generated: list[int] = []
    real = decoding._generate

    def spy(model, tokenizer, cache, ids, mask, budget):
        generated.append(ids.shape[0])
        return real(model, tokenizer, cache, ids, mask, budget)

    monkeypatch.setattr(decoding, "_generate", spy)
    prefix = decoding.SharedPrefix(model, decoding.common_prefix(prompts))
    chosen, fast = decoding.both(model, tokenizer, task, prompts, 60, prefix)
    drafted_rows = sum(generated)
    generated.clear()
    _, slow = decoding.both(model, tokenizer, task, prompts, 60, prefix, drafts=False)
    assert generated == [len(prompts)]
    assert [d.raw for d in fast] == [d.raw for d in slow]
    accepted = [c.raw == f.raw for c, f in zip(chosen, fast, strict=True)]
    assert drafted_rows == len(prompts) - sum(accepted)  # only rejected drafts were generated token by token
    if which == "smollm2":  # the real model copies the few-shot answers: those drafts are accepted
        assert accepted[:2] == [True, True] and drafted_rows >= 1


def test_no_drafts_when_the_generation_config_changes_greedy_choices(model_cache):
    model, _ = load(model_cache / TINY_ID)
    assert decoding.greedy_is_argmax(model)
    model.generation_config.repetition_penalty = 1.3
    assert not decoding.greedy_is_argmax(model)


def test_sliding_window_models_are_scored_exactly_the_plain_way(catalog, model_cache):
    """A window shorter than prompt + answer: no shared cache (it would crash or cut real tokens), exact answers."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_cache / TINY_ID))
    model = tiny_windowed_mistral(len(tokenizer))
    task = catalog.task()
    template = load_template(tokenizer, "qwen3_nothink")
    prompts = [prompt_ids(template, tokenizer, r) for r in rows_of(catalog, 3, 60)]
    assert decoding.sliding_window_cut(model, max(len(p) for p in prompts))
    prefix = decoding.SharedPrefix(model, decoding.common_prefix(prompts))
    assert len(prefix) > 16  # the shared prefix alone is longer than the window
    chosen, generated = decoding.both(model, tokenizer, task, prompts, 12, prefix)
    assert [d.labels for d in decoding.constrained(model, tokenizer, task, prompts, prefix)] == [
        d.labels for d in chosen
    ]
    for prompt, got, text in zip(prompts, chosen, generated, strict=True):
        labels, probs = naive(model, tokenizer, task, prompt)
        assert got.labels == labels
        for name in task.field_names:
            for value, p in probs[name].items():
                assert got.probabilities[name][value] == pytest.approx(p, abs=1e-4)
        with torch.no_grad():
            alone = model.generate(
                input_ids=torch.tensor([prompt]),
                max_new_tokens=12,
                do_sample=False,
                pad_token_id=decoding._pad_id(tokenizer),
            )
        assert text.raw == tokenizer.decode(alone[0, len(prompt) :], skip_special_tokens=True).strip()
    full_attention, _ = load(model_cache / TINY_ID)
    assert not decoding.sliding_window_cut(full_attention, 100_000)
