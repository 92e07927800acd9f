"""Decoding labels from a model: constrained (scoring the allowed values) or free generation.

Constrained decoding writes the JSON skeleton itself (keys and punctuation in
the task's canonical order) and, for each field, scores every allowed value
(enum members, every integer of the range) as a continuation of the prompt
and the answer so far; the most probable value is chosen. The result is
valid by construction, exact (no sampling, no truncation), and each field's
probabilities over its allowed values are returned. Prompts are encoded once
per batch and their key/value cache is reused for every candidate.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

import torch

from orchestrator.task import Task


@dataclass
class Decoded:
    """One example's decoding: the raw text and, for constrained decoding, field probabilities."""

    raw: str
    labels: dict[str, Any] | None = None
    probabilities: dict[str, dict[str, float]] | None = None


def _answer_prefix(chosen: dict[str, Any]) -> str:
    body = ", ".join(
        f"{json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}" for k, v in chosen.items()
    )
    return "{" + body + (", " if body else "")


def _left_pad(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, row in enumerate(batch):
        ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = 1
    return ids, mask


@torch.no_grad()
def constrained(model: Any, tokenizer: Any, task: Task, prompts: list[list[int]]) -> list[Decoded]:
    """Choose every field's value by scoring all allowed values after the prompt."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids, mask = _left_pad(prompts, pad)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    cache, last_logp = out.past_key_values, torch.log_softmax(out.logits[:, -1].float(), -1)
    lengths = mask.sum(-1)
    chosen: list[dict[str, Any]] = [{} for _ in prompts]
    probs: list[dict[str, dict[str, float]]] = [{} for _ in prompts]
    names = task.field_names
    for index, name in enumerate(names):
        values = task.field_values(name)
        tail = ", " if index < len(names) - 1 else "}"
        texts = [
            [_answer_prefix(c) + json.dumps(name) + ": " + json.dumps(v, ensure_ascii=False) + tail for v in values]
            for c in chosen
        ]
        scores = _score(model, cache, last_logp, mask, lengths, tokenizer, texts, pad)
        for i, row in enumerate(scores):
            best = max(range(len(values)), key=lambda j, row=row: row[j])
            chosen[i][name] = values[best]
            top = max(row)
            weights = [math.exp(s - top) for s in row]
            total = sum(weights)
            probs[i][name] = {str(v): w / total for v, w in zip(values, weights, strict=True)}
    return [Decoded(task.canonical_answer(c), c, p) for c, p in zip(chosen, probs, strict=True)]


def _score(model, cache, last_logp, mask, lengths, tokenizer, texts, pad) -> list[list[float]]:
    """Log-probability of each candidate text after each prompt (rows: examples, columns: candidates)."""
    n = len(texts[0])
    flat = [tokenizer.encode(t, add_special_tokens=False) for row in texts for t in row]
    width = max(len(t) for t in flat)
    cand = torch.full((len(flat), width), pad, dtype=torch.long)
    cand_mask = torch.zeros((len(flat), width), dtype=torch.long)
    for i, toks in enumerate(flat):
        cand[i, : len(toks)] = torch.tensor(toks)
        cand_mask[i, : len(toks)] = 1
    expanded = copy.deepcopy(cache)
    expanded.batch_repeat_interleave(n)
    full_mask = torch.cat([mask.repeat_interleave(n, 0), cand_mask], dim=1)
    positions = lengths.repeat_interleave(n).unsqueeze(1) + torch.arange(width).unsqueeze(0)
    logits = model(
        input_ids=cand, attention_mask=full_mask, position_ids=positions, past_key_values=expanded, use_cache=True
    ).logits.float()
    logp = torch.log_softmax(logits, -1)
    first = last_logp.repeat_interleave(n, 0)
    scores = []
    for i, toks in enumerate(flat):
        total = first[i, toks[0]].item()
        for t in range(1, len(toks)):
            total += logp[i, t - 1, toks[t]].item()
        scores.append(total)
    return [scores[r * n : (r + 1) * n] for r in range(len(texts))]


@torch.no_grad()
def free(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int = 128) -> list[Decoded]:
    """Plain greedy generation; the caller extracts the JSON."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids, mask = _left_pad(prompts, pad)
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
    )
    return [Decoded(tokenizer.decode(row[ids.shape[1] :], skip_special_tokens=True).strip()) for row in out]
