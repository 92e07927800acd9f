"""Decoding labels from a model: constrained (scoring the allowed values) or free generation.

Constrained decoding writes the JSON skeleton itself (keys and punctuation in
the task's canonical order) and, for each field, scores every allowed value
(enum members, every integer of the range) as a continuation of the prompt
and the answer so far; the most probable value is chosen. The result is
valid by construction, exact (no sampling, no truncation), and each field's
probabilities over its allowed values are returned.

Cost, on hardware where reading the prompt is the floor:

- the token prefix every prompt of a run shares (chat header, the task's
  instruction) is computed once per model (`SharedPrefix`) and its key/value
  cache copied into every batch;
- each field costs one forward: the previous field's chosen value and this
  field's key are fed together with *all* its candidate values, laid out as a
  tree (each candidate attends to the context and to its own earlier tokens
  only, through a 4-D attention mask), so a batch takes as many forwards as
  the task has fields;
- only the positions whose next-token distribution is needed go through the
  vocabulary projection.

A model with sliding-window attention layers whose window is shorter than a
prompt plus its answer cannot share a cache laid out this way (its cache
keeps only the window's columns, and pads inside a row would push real
tokens out of it): it is scored the plain way instead (`sliding_window_cut`),
each candidate a full forward, free generation by plain left-padded batches.
Exact, slower.

`both` runs the two decodings on one encoding of the prompts; free
generation stops for each example as soon as its JSON object closes. In
`both`, the constrained answer is also a draft for free generation: one
forward over every draft checks, position by position, whether greedy
decoding would emit exactly those tokens and close the object with the last
one; where it would, that is the free output (exactly what greedy decoding
gives, at the cost of one forward instead of one per token), and only the
other examples are generated token by token. A model whose generation
config changes greedy choices (repetition penalty, suppressed tokens, ...)
is never given drafts.
"""

from __future__ import annotations

import copy
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


def _pad_id(tokenizer: Any) -> int:
    for token in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token is not None:
            return token
    return 0  # never attended to: every pad position is masked


def common_prefix(prompts: list[list[int]]) -> list[int]:
    """The longest token prefix all prompts share, leaving every prompt at least one token of its own."""
    if not prompts:
        return []
    first = prompts[0]
    length = min(len(p) for p in prompts) - 1
    for prompt in prompts[1:]:
        same = 0
        while same < length and prompt[same] == first[same]:
            same += 1
        length = same
    return list(first[: max(0, length)])


class SharedPrefix:
    """The key/value cache of the prefix every prompt of a run shares, computed once per model."""

    @torch.no_grad()
    def __init__(self, model: Any, tokens: list[int]):
        self.tokens = list(tokens)
        self.cache = None
        if self.tokens:
            ids = torch.tensor([self.tokens])
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            self.cache = out.past_key_values

    def __len__(self) -> int:
        return len(self.tokens)

    def for_batch(self, size: int) -> Any:
        """A fresh copy of the cache for a batch of `size` sequences (None when there is no shared prefix)."""
        if self.cache is None:
            return None
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(size)
        return cache


class _Batch:
    """A batch of sequences in the model's key/value cache: the shared prefix, then blocks fed step by step.

    Each step feeds one block of tokens per sequence (left-padded inside the block, so every block's last
    real token is in the same column) and, optionally, candidate continuations after it as a tree. The
    candidates are scored and dropped from the cache; the block stays.
    """

    def __init__(self, model: Any, prefix: SharedPrefix, size: int, pad: int):
        self.model, self.pad, self.size = model, pad, size
        self.cache = prefix.for_batch(size)
        self.valid = torch.ones((size, len(prefix)), dtype=torch.bool)  # which cache columns are real tokens
        self.next_pos = torch.full((size,), len(prefix), dtype=torch.long)
        self.dtype = next(model.parameters()).dtype

    @property
    def length(self) -> int:
        return self.valid.shape[1]

    def step(self, blocks: list[list[int]], candidates: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Feed `blocks` and score `candidates` after them in one forward.

        Returns (log-probabilities of the next token after each block, (batch, vocab); each candidate's
        total log-probability, (batch, candidates), or None without candidates).
        """
        width = max(len(b) for b in blocks)
        keep = [width - 1] + self._candidate_inputs(width, candidates)
        logits, lengths = self._forward(blocks, candidates, keep)
        logp = torch.log_softmax(logits.float(), -1)
        scores = self._candidate_scores(logp, candidates) if candidates else None
        return logp[:, 0], scores

    def greedy(self, blocks: list[list[int]]) -> torch.Tensor:
        """Feed `blocks` and return the most probable next token after every block position, (batch, width).

        Blocks are left-padded to the widest one: row i's real tokens are its last len(blocks[i]) columns.
        """
        width = max(len(b) for b in blocks)
        logits, _ = self._forward(blocks, [], list(range(width)))
        return logits.argmax(-1)

    def rewind(self, length: int) -> None:
        """Keep only the first `length` cache columns (what was fed after them is forgotten)."""
        self.cache.crop(length)
        self.valid = self.valid[:, :length]
        self.next_pos = self.valid.sum(1)

    def _forward(
        self, blocks: list[list[int]], candidates: list[list[int]], keep: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward of `blocks` (kept in the cache) and `candidates` (dropped); the logits at `keep`."""
        width = max(len(b) for b in blocks)
        flat = [t for c in candidates for t in c]
        ids = torch.full((self.size, width + len(flat)), self.pad, dtype=torch.long)
        real = torch.zeros((self.size, width), dtype=torch.bool)
        lengths = torch.tensor([len(b) for b in blocks])
        for i, block in enumerate(blocks):
            if block:
                ids[i, width - len(block) : width] = torch.tensor(block)
                real[i, width - len(block) :] = True
        if flat:
            ids[:, width:] = torch.tensor(flat)
        positions = self._positions(real, lengths, candidates)
        mask = self._mask(real, candidates)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=torch.tensor(keep, dtype=torch.long),
        )
        self.cache = out.past_key_values
        self.cache.crop(self.length + width)
        self.valid = torch.cat([self.valid, real], dim=1)
        self.next_pos = self.next_pos + lengths
        return out.logits, lengths

    def _positions(self, real: torch.Tensor, lengths: torch.Tensor, candidates: list[list[int]]) -> torch.Tensor:
        width = real.shape[1]
        block = self.next_pos.unsqueeze(1) + (real.long().cumsum(1) - 1).clamp(min=0)
        offsets = [t for c in candidates for t in range(len(c))]
        start = (self.next_pos + lengths).unsqueeze(1)
        tree = start + torch.tensor(offsets, dtype=torch.long).unsqueeze(0) if offsets else start[:, :0]
        return torch.cat([block[:, :width], tree], dim=1)

    def _mask(self, real: torch.Tensor, candidates: list[list[int]]) -> torch.Tensor:
        """(batch, 1, queries, keys) additive mask: the cache's real columns, causal block, candidate tree."""
        width = real.shape[1]
        flat = sum(len(c) for c in candidates)
        queries = width + flat
        allowed = torch.zeros((self.size, queries, self.length + queries), dtype=torch.bool)
        allowed[:, :, : self.length] = self.valid.unsqueeze(1)
        causal = torch.tril(torch.ones((width, width), dtype=torch.bool))
        allowed[:, :width, self.length : self.length + width] = causal.unsqueeze(0) & real.unsqueeze(1)
        allowed[:, :width, : self.length] &= real.unsqueeze(2)  # a pad query sees only itself
        idx = torch.arange(width)
        allowed[:, idx, self.length + idx] = True
        allowed[:, width:, self.length : self.length + width] = real.unsqueeze(1)
        start = width
        for cand in candidates:
            n = len(cand)
            tri = torch.tril(torch.ones((n, n), dtype=torch.bool))
            allowed[:, start : start + n, self.length + start : self.length + start + n] = tri
            start += n
        mask = torch.zeros(allowed.shape, dtype=self.dtype)
        mask.masked_fill_(~allowed, torch.finfo(self.dtype).min)
        return mask.unsqueeze(1)

    @staticmethod
    def _candidate_inputs(width: int, candidates: list[list[int]]) -> list[int]:
        """Columns whose logits predict a candidate's 2nd, 3rd, ... token: each candidate token but its last."""
        columns, start = [], width
        for cand in candidates:
            columns += list(range(start, start + len(cand) - 1))
            start += len(cand)
        return columns

    @staticmethod
    def _candidate_scores(logp: torch.Tensor, candidates: list[list[int]]) -> torch.Tensor:
        """Each candidate's log-probability: its first token after the block, the rest inside the tree."""
        totals = []
        column = 1  # column 0 of the kept logits is the block's last token
        for cand in candidates:
            total = logp[:, 0, cand[0]].clone()
            for t in range(1, len(cand)):
                total += logp[:, column, cand[t]]
                column += 1
            totals.append(total)
        return torch.stack(totals, dim=1)


def _choose(
    batch: _Batch, suffixes: list[list[int]], tokenizer: Any, task: Task
) -> tuple[list[Decoded], list[list[int]]]:
    """Feed each prompt's own part, then choose every field in one forward per field.

    Returns the decodings and each answer's tokens (keys and chosen values, as fed).
    """
    size = batch.size
    chosen: list[dict[str, Any]] = [{} for _ in range(size)]
    probs: list[dict[str, dict[str, float]]] = [{} for _ in range(size)]
    answers: list[list[int]] = [[] for _ in range(size)]
    names = task.field_names
    pending = suffixes  # what each sequence still has to read before the next key
    for index, name in enumerate(names):
        last = index == len(names) - 1
        key = tokenizer.encode(_key_piece(index, name), add_special_tokens=False)
        values = task.field_values(name)
        pieces = [tokenizer.encode(_value_piece(v, last), add_special_tokens=False) for v in values]
        _, scores = batch.step([done + key for done in pending], pieces)
        weights = torch.softmax(scores, dim=1)
        best = scores.argmax(dim=1).tolist()
        for i, j in enumerate(best):
            chosen[i][name] = values[j]
            probs[i][name] = {str(v): float(w) for v, w in zip(values, weights[i], strict=True)}
            answers[i] += key + pieces[j]
        pending = [pieces[j] for j in best]
    decoded = [Decoded(task.canonical_answer(c), c, p) for c, p in zip(chosen, probs, strict=True)]
    return decoded, answers


class _JsonClosed:
    """A stopping criterion: a row is done once the first JSON object in its new text has closed."""

    def __init__(self, tokenizer: Any, start: int):
        self.tokenizer, self.start = tokenizer, start

    def __call__(self, input_ids: torch.Tensor, scores: Any, **_kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.start :], skip_special_tokens=True)
        return torch.tensor([json_closed(text) for text in texts], dtype=torch.bool)


def json_closed(text: str) -> bool:
    """Whether `text` holds a JSON object that has opened and closed (braces inside strings ignored)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"' and depth:
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if not depth:
                return True
    return False


def _generate(
    model: Any, tokenizer: Any, cache: Any, ids: torch.Tensor, mask: torch.Tensor, budget: int
) -> list[Decoded]:
    """Greedy generation after `ids` (`cache` holds them all but the last), stopping when the JSON closes."""
    from transformers import StoppingCriteriaList

    if cache is not None:
        cache.crop(ids.shape[1] - 1)
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        past_key_values=cache,
        max_new_tokens=budget,
        do_sample=False,
        pad_token_id=_pad_id(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        stopping_criteria=StoppingCriteriaList([_JsonClosed(tokenizer, ids.shape[1])]),
    )
    texts = tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
    return [Decoded(text.strip()) for text in texts]


# Generation settings under which greedy decoding is no longer the plain argmax of the logits.
_CHOICE_CHANGING = {
    "repetition_penalty": (None, 1.0),
    "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "sequence_bias": (None,),
    "exponential_decay_length_penalty": (None,),
}


def greedy_is_argmax(model: Any) -> bool:
    """Whether the model's generation config leaves greedy decoding the plain argmax (drafts can be checked)."""
    config = getattr(model, "generation_config", None)
    return config is None or all(getattr(config, k, None) in plain for k, plain in _CHOICE_CHANGING.items())


def _accepted(tokenizer: Any, draft: list[int], greedy: list[int], budget: int) -> bool:
    """Whether greedy decoding emits exactly `draft` and stops at its last token (the JSON object closes)."""
    if not draft or len(draft) > budget or greedy != draft:
        return False
    return json_closed(tokenizer.decode(draft, skip_special_tokens=True)) and not json_closed(
        tokenizer.decode(draft[:-1], skip_special_tokens=True)
    )


def _generate_from_drafts(
    model: Any,
    tokenizer: Any,
    batch: _Batch,
    ids: torch.Tensor,
    mask: torch.Tensor,
    budget: int,
    drafts: list[list[int]],
) -> list[Decoded]:
    """Greedy generation where one forward checks each draft; only rejected rows are generated token by token."""
    start = ids.shape[1] - 1  # the cache keeps the prompts but their last token
    out: list[Decoded | None] = [None] * batch.size
    if batch.cache is not None and greedy_is_argmax(model):
        batch.rewind(start)
        last = ids[:, -1].tolist()
        predicted = batch.greedy([[last[i], *draft] for i, draft in enumerate(drafts)])
        width = predicted.shape[1]
        for i, draft in enumerate(drafts):
            row = predicted[i, width - len(draft) - 1 : width - 1].tolist()
            if _accepted(tokenizer, draft, row, budget):
                out[i] = Decoded(tokenizer.decode(draft, skip_special_tokens=True).strip())
    rest = [i for i, item in enumerate(out) if item is None]
    if rest:
        cache = batch.cache
        if cache is not None:
            cache.crop(start)
            if len(rest) < batch.size:
                cache.batch_select_indices(torch.tensor(rest))
        for i, item in zip(rest, _generate(model, tokenizer, cache, ids[rest], mask[rest], budget), strict=True):
            out[i] = item
    return out  # type: ignore[return-value]


def answer_budget(task: Task, tokenizer: Any) -> int:
    """max_new_tokens for free decoding: 1.5x the longest valid answer, plus an end token.

    Room for pretty-printing (newlines, indents) and a short preamble; generation also stops as soon as
    the JSON object closes, so the budget only bounds an untrained model's rambling.
    """
    longest = {name: max(task.field_values(name), key=lambda v: len(str(v))) for name in task.field_names}
    tokens = len(tokenizer.encode(task.canonical_answer(longest), add_special_tokens=False))
    return tokens * 3 // 2 + 2


def _split(prefix: SharedPrefix, prompts: list[list[int]]) -> list[list[int]]:
    """Each prompt's own part after the shared prefix."""
    n = len(prefix)
    if any(p[:n] != prefix.tokens for p in prompts):
        raise ValueError("a prompt does not start with the shared prefix it was batched with")
    return [p[n:] for p in prompts]


def _prompt_block(batch: _Batch, prefix: SharedPrefix, suffixes: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, 2-D mask) of prefix + left-padded suffixes, as the cache lays them out."""
    width = max(len(s) for s in suffixes)
    ids = torch.full((batch.size, len(prefix) + width), batch.pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    if len(prefix):
        ids[:, : len(prefix)] = torch.tensor(prefix.tokens)
        mask[:, : len(prefix)] = 1
    for i, suffix in enumerate(suffixes):
        ids[i, ids.shape[1] - len(suffix) :] = torch.tensor(suffix)
        mask[i, ids.shape[1] - len(suffix) :] = 1
    return ids, mask


def sliding_window_cut(model: Any, longest: int) -> bool:
    """Whether some attention layer of `model` sees only a window shorter than `longest` tokens."""
    config = getattr(model.config, "text_config", None) or model.config
    window = getattr(config, "sliding_window", None)
    if not window or window >= longest:
        return False
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        return any("sliding" in str(kind) for kind in layer_types)
    return getattr(config, "use_sliding_window", True) is not False


def _longest(task: Task, tokenizer: Any, prompts: list[list[int]], budget: int = 0) -> int:
    return max(len(p) for p in prompts) + max(budget, answer_budget(task, tokenizer)) if prompts else 0


@torch.no_grad()
def _plain_constrained(model: Any, tokenizer: Any, task: Task, prompts: list[list[int]]) -> list[Decoded]:
    """Constrained decoding without a shared cache: each candidate continuation is one row of a full forward."""
    pad, out = _pad_id(tokenizer), []
    names = task.field_names
    for prompt in prompts:
        chosen: dict[str, Any] = {}
        probs: dict[str, dict[str, float]] = {}
        answer: list[int] = []
        for index, name in enumerate(names):
            answer += tokenizer.encode(_key_piece(index, name), add_special_tokens=False)
            values = task.field_values(name)
            pieces = [
                tokenizer.encode(_value_piece(v, index == len(names) - 1), add_special_tokens=False) for v in values
            ]
            rows = [prompt + answer + piece for piece in pieces]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, row in enumerate(rows):  # right padding: causal attention never reaches the pads
                ids[j, : len(row)] = torch.tensor(row)
                mask[j, : len(row)] = 1
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
            start = len(prompt) + len(answer)
            scores = torch.stack(
                [sum(logp[j, start - 1 + t, piece[t]] for t in range(len(piece))) for j, piece in enumerate(pieces)]
            )
            best = int(scores.argmax())
            chosen[name] = values[best]
            probs[name] = {str(v): float(w) for v, w in zip(values, torch.softmax(scores, 0), strict=True)}
            answer += pieces[best]
        out.append(Decoded(task.canonical_answer(chosen), chosen, probs))
    return out


@torch.no_grad()
def _plain_free(model: Any, tokenizer: Any, prompts: list[list[int]], budget: int) -> list[Decoded]:
    """Greedy generation of left-padded prompts with no shared cache (as transformers batches it)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), _pad_id(tokenizer), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt) :] = torch.tensor(prompt)
        mask[i, width - len(prompt) :] = 1
    return _generate(model, tokenizer, None, ids, mask, budget)


@torch.no_grad()
def constrained(
    model: Any, tokenizer: Any, task: Task, prompts: list[list[int]], prefix: SharedPrefix | None = None
) -> list[Decoded]:
    """Choose every field's value by scoring all allowed values after the prompt and the answer so far.

    The answer is cut into pieces at the spaces of the canonical JSON
    (`{"depression_level":` | ` 1,` | ` "anxiety_level":` | ...), which are
    token boundaries of the usual pre-tokenizers, so the pieces' tokens are the
    answer's tokens as training saw them.
    """
    if sliding_window_cut(model, _longest(task, tokenizer, prompts)):
        return _plain_constrained(model, tokenizer, task, prompts)
    prefix = prefix or SharedPrefix(model, [])
    batch = _Batch(model, prefix, len(prompts), _pad_id(tokenizer))
    return _choose(batch, _split(prefix, prompts), tokenizer, task)[0]


@torch.no_grad()
def free(
    model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int = 128, prefix: SharedPrefix | None = None
) -> list[Decoded]:
    """Greedy generation, stopped when the JSON object closes; the caller extracts the JSON."""
    if sliding_window_cut(model, max((len(p) for p in prompts), default=0) + max_new_tokens):
        return _plain_free(model, tokenizer, prompts, max_new_tokens)
    prefix = prefix or SharedPrefix(model, [])
    suffixes = _split(prefix, prompts)
    batch = _Batch(model, prefix, len(prompts), _pad_id(tokenizer))
    if any(len(s) > 1 for s in suffixes):
        batch.step([s[:-1] for s in suffixes], [])  # the cache up to each prompt's last token
    ids, mask = _prompt_block(batch, prefix, suffixes)
    return _generate(model, tokenizer, batch.cache, ids, mask, max_new_tokens)


@torch.no_grad()
def both(
    model: Any,
    tokenizer: Any,
    task: Task,
    prompts: list[list[int]],
    max_new_tokens: int = 128,
    prefix: SharedPrefix | None = None,
    drafts: bool = True,
) -> tuple[list[Decoded], list[Decoded]]:
    """(constrained, free) decodings of the same prompts, reading each prompt once.

    Each constrained answer is free generation's draft (`drafts=False`: generate every token instead).
    """
    if sliding_window_cut(model, _longest(task, tokenizer, prompts, max_new_tokens)):
        plain = _plain_constrained(model, tokenizer, task, prompts)
        return plain, _plain_free(model, tokenizer, prompts, max_new_tokens)
    prefix = prefix or SharedPrefix(model, [])
    suffixes = _split(prefix, prompts)
    batch = _Batch(model, prefix, len(prompts), _pad_id(tokenizer))
    chosen, answers = _choose(batch, suffixes, tokenizer, task)
    ids, mask = _prompt_block(batch, prefix, suffixes)
    if not drafts:
        return chosen, _generate(model, tokenizer, batch.cache, ids, mask, max_new_tokens)
    return chosen, _generate_from_drafts(model, tokenizer, batch, ids, mask, max_new_tokens, answers)


@torch.no_grad()
def decode_speed(model: Any, prompt: list[int], tokens: int = 32) -> float:
    """Greedy decoding speed at batch 1 after `prompt` (tokens per second, the prompt's reading excluded)."""
    import time

    from transformers import DynamicCache

    cache = DynamicCache()
    out = model(input_ids=torch.tensor([prompt]), past_key_values=cache, use_cache=True)
    token = out.logits[0, -1].argmax()
    started = time.perf_counter()
    for _ in range(tokens):
        out = model(input_ids=token.view(1, 1), past_key_values=cache, use_cache=True)
        token = out.logits[0, -1].argmax()
    return tokens / (time.perf_counter() - started)


def length_sorted_batches(prompts: list[list[int]], size: int) -> list[list[int]]:
    """Indices of `prompts` in batches of similar length (longest first), so padding is small."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    return [order[start : start + size] for start in range(0, len(order), size)]


MEMORY_SHARE = 0.25  # of the free memory, for one batch's key/value cache and activations
MAX_BATCH = 16


def auto_batch_size(model: Any, longest: int, free_bytes: int | None = None) -> int:
    """The largest batch (up to 16) whose cache and activations for the longest prompt fit a quarter of free memory."""
    config = model.config
    config = getattr(config, "text_config", None) or config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    width = next(model.parameters()).element_size()
    cache = 2 * config.num_hidden_layers * kv_heads * head_dim * longest * width
    activations = longest * (4 * config.hidden_size + 3 * getattr(config, "intermediate_size", 4 * config.hidden_size))
    scores = heads * longest * longest
    per_example = cache + (activations + scores) * 4
    free_bytes = free_bytes if free_bytes is not None else _free_memory(model)
    return max(1, min(MAX_BATCH, int(free_bytes * MEMORY_SHARE // per_example)))


def _free_memory(model: Any) -> int:
    device = next(model.parameters()).device
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import psutil  # installed with accelerate, which transformers' Trainer needs

    return int(psutil.virtual_memory().available)
