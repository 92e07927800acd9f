"""Decoding labels from a model: constrained (scoring the allowed values) or free generation.

Constrained decoding writes the JSON skeleton itself (keys and punctuation in
the task's canonical order) and, for each field, scores every allowed value
(enum members, every integer of the range) as a continuation of the prompt
and the answer so far; the most probable value is chosen. The result is
valid by construction, exact (no sampling, no truncation), and each field's
probabilities over its allowed values are returned. Prompts are encoded once
per batch and their key/value cache is reused for every candidate.

`both` runs the two decodings on one encoding of the prompts: on CPU the
prompt's forward pass is most of the cost of scoring an example.
"""

from __future__ import annotations

import json
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


def _key_piece(index: int, name: str) -> str:
    return ("{" if index == 0 else " ") + json.dumps(name, ensure_ascii=False) + ":"


def _value_piece(value: Any, last: bool) -> str:
    return " " + json.dumps(value, ensure_ascii=False) + ("}" if last else ",")


def _left_pad(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, row in enumerate(batch):
        ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = 1
    return ids, mask


class _Context:
    """A batch of prompts and answers-so-far held in the model's key/value cache."""

    def __init__(self, model: Any, prompts: list[list[int]], pad: int):
        self.model, self.pad = model, pad
        self.prompt_ids, self.prompt_mask = _left_pad(prompts, pad)
        self.mask = self.prompt_mask
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        # Only the last position's logits are needed: skips the vocabulary projection of the whole prompt.
        out = model(
            input_ids=self.prompt_ids,
            attention_mask=self.mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        self.cache = out.past_key_values
        self.next_pos = self.mask.sum(-1)
        self.last_logp = torch.log_softmax(out.logits[:, -1].float(), -1)

    def _forward(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        row_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            row_mask[i, : len(r)] = 1
        mask = torch.cat([self.mask, row_mask], dim=1)
        positions = self.next_pos.unsqueeze(1) + torch.arange(width).unsqueeze(0)
        logits = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=self.cache, use_cache=True
        ).logits
        return torch.log_softmax(logits.float(), -1), mask, row_mask

    def feed(self, rows: list[list[int]]) -> None:
        """Append each row's tokens to its sequence (rows may differ in length)."""
        logp, self.mask, row_mask = self._forward(rows)
        lengths = row_mask.sum(-1)
        self.last_logp = logp[torch.arange(len(rows)), lengths - 1]
        self.next_pos = self.next_pos + lengths

    def score(self, tokens: list[int]) -> torch.Tensor:
        """Log-probability of the same continuation after every sequence; the cache is left as it was."""
        length = self.cache.get_seq_length()
        logp, _, _ = self._forward([tokens] * self.mask.shape[0])
        self.cache.crop(length)
        total = self.last_logp[:, tokens[0]].clone()
        for t in range(1, len(tokens)):
            total += logp[:, t - 1, tokens[t]]
        return total


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _choose(context: _Context, tokenizer: Any, task: Task) -> list[Decoded]:
    size = context.mask.shape[0]
    chosen: list[dict[str, Any]] = [{} for _ in range(size)]
    probs: list[dict[str, dict[str, float]]] = [{} for _ in range(size)]
    names = task.field_names
    pending = [[] for _ in range(size)]  # the chosen value of the previous field, fed with the next key
    for index, name in enumerate(names):
        last = index == len(names) - 1
        key = tokenizer.encode(_key_piece(index, name), add_special_tokens=False)
        context.feed([done + key for done in pending])
        values = task.field_values(name)
        pieces = [tokenizer.encode(_value_piece(v, last), add_special_tokens=False) for v in values]
        scores = torch.stack([context.score(piece) for piece in pieces], dim=1)  # (batch, values)
        weights = torch.softmax(scores, dim=1)
        best = scores.argmax(dim=1).tolist()
        for i, j in enumerate(best):
            chosen[i][name] = values[j]
            probs[i][name] = {str(v): float(w) for v, w in zip(values, weights[i], strict=True)}
        pending = [pieces[j] for j in best]
    return [Decoded(task.canonical_answer(c), c, p) for c, p in zip(chosen, probs, strict=True)]


def _generate(
    model: Any, tokenizer: Any, ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, cache: Any = None
) -> list[Decoded]:
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        past_key_values=cache,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=_pad_id(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
    )
    return [Decoded(tokenizer.decode(row[ids.shape[1] :], skip_special_tokens=True).strip()) for row in out]


def answer_budget(task: Task, tokenizer: Any) -> int:
    """max_new_tokens for free decoding: 1.5x the longest valid answer, plus an end token.

    Room for pretty-printing (newlines, indents) and a short preamble; on CPU every further token of an
    untrained model's rambling costs a forward pass of the whole batch.
    """
    longest = {name: max(task.field_values(name), key=lambda v: len(str(v))) for name in task.field_names}
    tokens = len(tokenizer.encode(task.canonical_answer(longest), add_special_tokens=False))
    return tokens * 3 // 2 + 2


@torch.no_grad()
def constrained(model: Any, tokenizer: Any, task: Task, prompts: list[list[int]]) -> list[Decoded]:
    """Choose every field's value by scoring all allowed values after the prompt and the answer so far.

    The answer is cut into pieces at the spaces of the canonical JSON
    (`{"depression_level":` | ` 1,` | ` "anxiety_level":` | ...), which are
    token boundaries of the usual pre-tokenizers, so the pieces' tokens are the
    answer's tokens as training saw them.
    """
    return _choose(_Context(model, prompts, _pad_id(tokenizer)), tokenizer, task)


@torch.no_grad()
def free(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int = 128) -> list[Decoded]:
    """Plain greedy generation; the caller extracts the JSON."""
    ids, mask = _left_pad(prompts, _pad_id(tokenizer))
    return _generate(model, tokenizer, ids, mask, max_new_tokens)


@torch.no_grad()
def both(
    model: Any, tokenizer: Any, task: Task, prompts: list[list[int]], max_new_tokens: int = 128
) -> tuple[list[Decoded], list[Decoded]]:
    """(constrained, free) decodings of the same prompts, encoding the prompts once."""
    context = _Context(model, prompts, _pad_id(tokenizer))
    chosen = _choose(context, tokenizer, task)
    # Back to the prompt minus its last token: generate() must run at least one position itself.
    context.cache.crop(context.prompt_ids.shape[1] - 1)
    generated = _generate(model, tokenizer, context.prompt_ids, context.prompt_mask, max_new_tokens, context.cache)
    return chosen, generated
