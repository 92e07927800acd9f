"""The one prompt path: inference prompts built by LLaMA-Factory's own template code.

Training encodes (user turn, answer) with `template.encode_oneturn`; the
prompt ids are everything before the answer. Inference uses the same call
with an empty answer, so the prompt a model sees at evaluation is, token for
token, the prompt it was trained on.
"""

from __future__ import annotations

from typing import Any

from orchestrator import lf_adapter as lf
from orchestrator.datasets import user_content


def load_template(tokenizer: Any, template_name: str) -> Any:
    """LLaMA-Factory's template, fitted to the tokenizer exactly as training does."""
    return lf.chat_template(tokenizer, template_name)


def prompt_ids(template: Any, tokenizer: Any, row: dict[str, Any], columns: dict[str, str] | None = None) -> list[int]:
    """Token ids of the prompt for an alpaca row, up to where the answer starts."""
    messages = [{"role": "user", "content": user_content(row, columns)}, {"role": "assistant", "content": ""}]
    ids, _ = template.encode_oneturn(tokenizer, messages)
    return list(ids)
