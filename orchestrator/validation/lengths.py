"""Token lengths of a dataset under a model's tokenizer and LLaMA-Factory template."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import lf_adapter as lf
from orchestrator.datasets import check_rows, lf_columns, user_content


@dataclass(frozen=True)
class LengthStats:
    """Prompt+answer token lengths over a dataset, and what cutoff_len would cut."""

    rows: int
    p50: int
    p95: int
    max: int
    answers_cut: int
    prompts_cut: int
    max_answer: int = 0  # tokens of the longest answer

    @property
    def suggested(self) -> int:
        """The smallest multiple of 64 that cuts nothing."""
        return int(math.ceil((self.max + 1) / 64) * 64)


def measure(
    ctx: Any,
    model_dir: Path,
    template_name: str,
    data: Path,
    columns: dict | None,
    cutoff_len: int,
    ranking: bool = False,
) -> LengthStats:
    """Encode every row exactly as LLaMA-Factory's supervised (or pairwise: the longer answer) processor
    does and count cuts."""
    key = (str(model_dir), template_name, str(data), data.stat().st_mtime_ns, str(columns), ranking)
    if key not in ctx.length_cache:
        ctx.length_cache[key] = pair_lengths(model_dir, template_name, data, columns, ranking)
    pairs, efficient_eos = ctx.length_cache[key]
    infer_seqlen = lf.infer_seqlen()
    answers_cut = prompts_cut = 0
    for prompt_len, answer_len in pairs:
        budget = cutoff_len - (1 if efficient_eos else 0)
        kept_prompt, kept_answer = infer_seqlen(prompt_len, answer_len, budget)
        answers_cut += kept_answer < answer_len
        prompts_cut += kept_prompt < prompt_len
    totals = sorted(p + a + (1 if efficient_eos else 0) for p, a in pairs) or [0]
    return LengthStats(
        rows=len(pairs),
        p50=totals[len(totals) // 2],
        p95=totals[min(len(totals) - 1, math.ceil(0.95 * len(totals)) - 1)],
        max=totals[-1],
        answers_cut=answers_cut,
        prompts_cut=prompts_cut,
        max_answer=max((a for _, a in pairs), default=0),
    )


def pair_lengths(model_dir: Path, template_name: str, data: Path, columns: dict | None, ranking: bool = False):
    """(prompt tokens, answer tokens) per usable row, in file order, and the template's efficient_eos.

    A preference row's answer is the longer of chosen and rejected: LLaMA-Factory's pairwise processor
    cuts both to the room the longer one leaves.
    """
    tok = tokenizer(model_dir)
    template = lf.chat_template(tok, template_name)
    cols = lf_columns(columns)
    rows, _ = check_rows(data, columns, ranking=ranking)
    answer_roles = ("chosen", "rejected") if ranking else ("response",)
    pairs = []
    for row in rows:
        lengths = []
        for role in answer_roles:
            messages = [
                {"role": "user", "content": user_content(row.data, cols)},
                {"role": "assistant", "content": str(row.data.get(cols[role], ""))},
            ]
            prompt_ids, answer_ids = template.encode_oneturn(tok, messages)
            lengths.append((len(prompt_ids), len(answer_ids)))
        pairs.append(max(lengths, key=lambda pair: pair[1]))
    return pairs, bool(getattr(template, "efficient_eos", False))


_TOKENIZERS: dict[str, Any] = {}


def tokenizer(model_dir: Path) -> Any:
    """The model's tokenizer, loaded once per folder."""
    if str(model_dir) not in _TOKENIZERS:
        from transformers import AutoTokenizer

        _TOKENIZERS[str(model_dir)] = AutoTokenizer.from_pretrained(str(model_dir))
    return _TOKENIZERS[str(model_dir)]
