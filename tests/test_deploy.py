"""Shipping what was trained: train → export → gguf → eval as one chain of jobs, the GGUF scored through llama.cpp.

Real parts throughout: llamafactory-cli training and merge-export, llama.cpp's own converter (from the
pinned llama-cpp-python source distribution) and quantizer, llama.cpp's Python bindings for scoring and for
grammar-constrained generation, the local executor and the real single-node SLURM. The model is a tiny
random Llama with SmolLM2's tokenizer (tests/tinymodels.py): llama.cpp's converter refuses the tiny
Qwen3's fixture-trained tokenizer.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import cancel_everything
from test_submit import FAST, go
from tinymodels import build_tiny_llama

from orchestrator import ledger, llamacpp
from orchestrator.errors import OrchError
from orchestrator.monitor import wait
from orchestrator.runs import Run
from orchestrator.submit import SubmitOptions, submit

LLAMA_ID = "orch-test/tiny-llama"
LLAMA_TEMPLATE = """{#- A tiny random Llama with SmolLM2's tokenizer, for tests: llama.cpp converts it. -#}
{% extends "families/smollm2.yaml.j2" %}
{% block model %}
orch:
  description: tiny random Llama (tests; llama.cpp-convertible)
model_name_or_path: orch-test/tiny-llama
cutoff_len: 1024
{% endblock %}
"""
TRAIN = FAST + ("max_steps=2", "save_steps=1", "logging_steps=1")
SFT = Run("tiny-llama", "lora", "sft")


@pytest.fixture(scope="session")
def tiny_llama(model_cache, smollm2_dir):
    """The tiny Llama in the session's model cache (built once)."""
    out = model_cache / LLAMA_ID
    if not (out / "config.json").is_file():
        build_tiny_llama(out, smollm2_dir)
    return out


@pytest.fixture
def llama_project(project, tiny_llama):
    (project.templates / "models/tiny-llama.yaml.j2").write_text(LLAMA_TEMPLATE, encoding="utf-8")
    return project


def _submit(catalog, executor, then, *sets, restart=False):
    return go(
        catalog,
        executor,
        *TRAIN[len(FAST) :],
        *sets,
        then=then,
        restart=restart,
        model="tiny-llama",
        command="pytest deploy",
    )


def _wait_all(project, plans):
    return {p.run.stage: wait(project, p.run, poll=0.5) for p in plans if p.action != "skip"}


def test_train_export_gguf_eval_is_one_chain(llama_project, catalog, executor):
    project = llama_project
    plans = _submit(catalog, executor, ("eval", "gguf", "export"))  # any order: the stage table orders the chain
    assert [p.run.stage for p in plans] == ["sft", "export", "gguf", "eval"]
    by_stage = {p.run.stage: p for p in plans}
    records = {r["stage"]: r for r in ledger.read(project.ledger) if r["event"] == "submitted"}
    assert records["export"]["depends_on"] == [by_stage["sft"].job_id]
    assert records["gguf"]["depends_on"] == [by_stage["export"].job_id]  # it reads the merged model
    assert sorted(records["eval"]["depends_on"]) == sorted(p.job_id for p in plans[:3])  # every model it scores
    states = _wait_all(project, plans)
    assert {stage: s.state for stage, s in states.items()} == dict.fromkeys(
        ("sft", "export", "gguf", "eval"), "COMPLETED"
    )

    folder = project.root / "saves/tiny-llama/lora/gguf"
    manifest = json.loads((folder / "gguf.json").read_text())
    assert manifest["quantization"] == "Q4_K_M" and set(manifest["files"]) == {"F16", "Q4_K_M"}
    quantized, f16 = folder / manifest["files"]["Q4_K_M"], folder / manifest["files"]["F16"]
    assert quantized.stat().st_size < f16.stat().st_size  # really quantized, F16 kept beside it
    assert quantized.read_bytes()[:4] == b"GGUF" and f16.read_bytes()[:4] == b"GGUF"
    assert (folder / "student_mental.gbnf").is_file() and (folder / "schema.json").is_file()

    # The eval job scored the adapter, the merged model and the GGUF, each decoding, as `orch eval` does.
    scored = {
        subject: json.loads((project.root / f"saves/tiny-llama/lora/{sub}/eval/test/{mode}/metrics.json").read_text())
        for subject, sub in (("adapter", "sft"), ("merged", "merged"), ("gguf", "gguf"))
        for mode in ("constrained",)
    }
    assert {m["subject"] for m in scored.values()} == {"adapter", "merged", "gguf"}
    gguf = scored["gguf"]
    assert gguf["quantization"] == "Q4_K_M" and gguf["n"] == 10 and gguf["valid_rate"] == 1.0
    assert gguf["model_bytes"] == quantized.stat().st_size
    # The gguf stage embedded the training chat template: llama.cpp's chat API renders the training prompt.
    assert gguf["chat_template"]["match"] is True, gguf["chat_template"]
    free = json.loads((folder / "eval/test/free/metrics.json").read_text())
    assert free["tokens_per_second"] > 0 and free["tokens_per_second_measured"] == "batch 1, 32 greedy tokens"
    evaluated = [r for r in ledger.for_run(project.ledger, SFT.name) if r["event"] == "evaluated"]
    assert len(evaluated) == 6 and all(r["command"] == "pytest deploy" for r in evaluated)
    steps_md = project.steps.read_text()
    assert "the quantized GGUF model (llama.cpp) scored on the test split" in steps_md
    card = (folder / "README.md").read_text()
    assert "Q4_K_M" in card and "agreement with adapter" in card and "Not scored yet" not in card

    # What a deployer decides on: the three rows side by side, with size, speed, agreement, risk-recall change.
    from orchestrator.collect import collect

    rows = {(r.values["method"], r.values["decoding"]): r for r in collect(project, catalog.task())}
    q4 = rows[("lora Q4_K_M", "constrained")]
    assert q4.values["model_mb"] == pytest.approx(quantized.stat().st_size / 1e6)
    assert 0 <= q4.values["agree_risk_flag"] <= 1 and q4.values["agreement_n"] == 10
    assert "risk_recall_change" in q4.values
    merged = rows[("lora merged", "constrained")]
    assert merged.values["agree_depression_level"] is not None
    assert rows[("lora", "constrained")].values.get("agree_risk_flag") is None  # the reference itself
    cancel_everything(project, executor)


def test_a_failed_export_cancels_gguf_and_eval(llama_project, catalog, executor):
    project = llama_project
    first = _submit(catalog, executor, ())
    assert _wait_all(project, first)["sft"].state == "COMPLETED"
    adapter = project.root / "saves/tiny-llama/lora/sft/adapter_model.safetensors"
    adapter.write_bytes(b"not safetensors")  # the merge-export fails at run time, after the submit checks
    plans = _submit(catalog, executor, ("export", "gguf", "eval"))
    assert plans[0].action == "skip"  # training finished: only the chain is submitted
    states = _wait_all(project, plans)
    assert states["export"].state == "FAILED"
    assert states["gguf"].state == "CANCELLED" and states["eval"].state == "CANCELLED"
    assert not (project.root / "saves/tiny-llama/lora/gguf/gguf.json").exists()


@pytest.mark.parametrize(
    ("then", "sets", "said"),
    [
        (("gguf",), (), "neither in this chain"),  # no merged model, no export in the chain
        (("export", "gguf"), ("gguf.quantization=Q4_K_X",), "no quantization type 'Q4_K_X'"),
        (("export", "gguf"), ("gguf.quantisation=Q8_0",), "gguf.quantisation: the gguf stage has no such setting"),
        (("export",), ("gguf.quantization=Q8_0",), "the gguf stage is not in this chain"),
        (("eval",), ("eval.split=holdout",), "has no such split"),
        (("eval",), ("eval.decoding=beam",), "unknown decoding"),
        (("eval",), ("eval.subjects=adapter,teacher",), "'teacher' is not a model orch scores"),
        (("eval",), ("eval.subjects=gguf",), "neither in this chain"),
    ],
)
def test_a_chain_that_cannot_run_is_refused_before_anything_is_queued(llama_project, catalog, then, sets, said):
    with pytest.raises(OrchError) as caught:
        _submit(catalog, "local", then, *sets)
    assert said in str(caught.value)
    assert not any(r["event"] == "submitted" for r in ledger.read(llama_project.ledger))


def test_llamacpp_is_fed_the_training_prompt_token_for_token(llama_project, catalog, monkeypatch):
    """The ids llama.cpp scores are LLaMA-Factory's template encoding, and llama.cpp's own tokenizer agrees."""
    from transformers import AutoTokenizer

    from orchestrator.deploy import export_gguf
    from orchestrator.evaluation import evaluate as ev
    from orchestrator.evaluation.metrics import summary
    from orchestrator.evaluation.prompts import load_template, prompt_ids

    project, task = llama_project, catalog.task()
    run = SFT
    plans = _submit(catalog, "local", ("export",))
    assert {s.state for s in _wait_all(project, plans).values()} == {"COMPLETED"}
    export_gguf(
        project,
        task,
        run.sibling("gguf"),
        project.root / "saves/tiny-llama/lora/merged",
        project.root / "saves/tiny-llama/lora/gguf",
        "q8_0",  # any case
        command="orch submit tiny-llama --then export,gguf --set hf_hub_token=hf_SECRETXYZ123456",
        log=lambda _m: None,
    )
    folder = project.root / "saves/tiny-llama/lora/gguf"
    for name in ("gguf.json", "README.md"):  # the folder that ships never holds a credential
        text = (folder / name).read_text()
        assert "orch submit tiny-llama" in text and "hf_SECRETXYZ123456" not in text
    fed: list[list[int]] = []
    real = llamacpp.decode_all

    def spy(model, tokenizer, task_, prompts, *args, **kwargs):
        fed.extend(prompts)
        return real(model, tokenizer, task_, prompts, *args, **kwargs)

    monkeypatch.setattr(llamacpp, "decode_all", spy)
    result = ev.evaluate(project, task, ev.Scored(run, "gguf"), split="test", operating_point=False)
    tokenizer = AutoTokenizer.from_pretrained(str(project.root / "saves/tiny-llama/lora/merged"))
    template = load_template(tokenizer, "smollm2")
    rows = ev.gold_rows(project, task, "test")
    expected = [prompt_ids(template, tokenizer, row) for row in rows]
    assert fed == expected  # exactly the training prompt's ids, every example
    model = llamacpp.GgufModel(project.root / "saves/tiny-llama/lora/gguf/tiny-llama-Q8_0.gguf", n_ctx=64)
    for ids in expected[:3]:
        text = tokenizer.decode(ids, skip_special_tokens=False)
        assert model.llm.tokenize(text.encode(), add_bos=False, special=True) == ids  # one vocabulary
    assert result.metrics["quantization"] == "Q8_0"
    # Exported without the training template, the GGUF keeps SmolLM2's own, whose default system line
    # differs from the training prompt's: a warning naming both renderings, in the summary and the card.
    check = result.metrics["chat_template"]
    assert check["match"] is False and check["training"] == tokenizer.decode(expected[0], skip_special_tokens=False)
    assert check["gguf"] and check["gguf"] != check["training"]
    said = summary(result.metrics)
    assert "WARNING: the chat template embedded in the GGUF" in said and repr(check["gguf"]) in said
    assert repr(check["training"]) in said
    assert "## Chat template" in (project.root / "saves/tiny-llama/lora/gguf/README.md").read_text()


def test_llamacpp_constrained_scores_match_transformers_on_the_same_weights(
    llama_project, catalog, tiny_llama, tmp_path
):
    """Constrained decoding through llama.cpp computes what the transformers path does (F16 vs fp32 weights)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from orchestrator.evaluation import decoding
    from orchestrator.evaluation.evaluate import gold_rows
    from orchestrator.evaluation.prompts import load_template, prompt_ids

    task = catalog.task()
    f16 = tmp_path / "tiny-F16.gguf"
    llamacpp.convert(tiny_llama, f16, log=lambda _m: None)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama), dtype=torch.float32).eval()
    template = load_template(tokenizer, "smollm2")
    prompts = [prompt_ids(template, tokenizer, row) for row in gold_rows(llama_project, task, "test", limit=4)]
    ours = decoding.constrained(model, tokenizer, task, prompts)
    gguf = llamacpp.GgufModel(f16, n_ctx=max(len(p) for p in prompts) + 64)
    theirs = [llamacpp.constrained_one(gguf, tokenizer, task, p) for p in prompts]
    for a, b in zip(ours, theirs, strict=True):
        for name in task.field_names:
            for value, p in a.probabilities[name].items():
                assert b.probabilities[name][value] == pytest.approx(p, abs=0.02)


def test_the_grammar_lists_every_allowed_value_and_20_llamacpp_generations_validate(
    llama_project, catalog, tiny_llama, tmp_path
):
    from orchestrator.deploy import grammar

    task = catalog.task()
    text = grammar(task)
    assert '" 9,"' in text or '" 9}"' in text  # integer ranges written out as enumerations
    assert '" 10' not in text and "minimum" not in text
    f16 = tmp_path / "tiny-F16.gguf"
    llamacpp.convert(tiny_llama, f16, log=lambda _m: None)
    module = llamacpp.bindings()
    llm = module.Llama(model_path=str(f16), n_ctx=256, verbose=False, seed=1)
    compiled = module.LlamaGrammar.from_string(text, verbose=False)
    outputs = []
    for seed in range(20):
        llm.set_seed(seed)
        out = llm.create_completion("Assess:", grammar=compiled, max_tokens=96, temperature=1.0, top_k=0, top_p=1.0)
        outputs.append(out["choices"][0]["text"])
    assert len(set(outputs)) > 1  # sampled, not one answer repeated
    for raw in outputs:
        assert task.answer_errors(json.loads(raw)) == [], raw


def test_an_unknown_quantization_type_lists_what_llamacpp_offers():
    with pytest.raises(OrchError) as caught:
        llamacpp.check_quant_type("Q4_K_X")
    assert "Q4_K_M" in str(caught.value.fix)
    assert llamacpp.check_quant_type("Q5_K_M") == "Q5_K_M"


def _fake_evaluation(project, task, rows, subject, folder, answers, quantization=None, p_risk=None):
    """An evaluation as orch writes one (orch's own writer), with the answers (and P(risk)) given: no model needed.

    With `p_risk`, the risk field's probabilities are recorded and a val threshold of 0.5 is applied.
    """
    from orchestrator.evaluation.evaluate import _write

    meta = {"task": task.name, "run": SFT.name, "subject": subject, "split": "test", "decoding": "constrained"}
    if quantization:
        meta["quantization"] = quantization
    out = project.root / f"saves/tiny-llama/lora/{folder}/eval/test/constrained"
    raws = [task.canonical_answer(a) for a in answers]
    probabilities = [None] * len(rows)
    chosen = None
    if p_risk is not None:
        probabilities = [{task.risk_field: {"none": 1 - p, "suicidal": p}} for p in p_risk]
        chosen = (0.5, "chosen on val (test)")
    _write(task, rows, raws, probabilities, out, meta, chosen)


def test_a_quantized_model_that_loses_a_risk_flag_is_flagged_and_not_shipped(llama_project, catalog):
    """Agreement with the adapter per field, and a drop in any-risk recall flagged (no model: orch's writer)."""
    from orchestrator.collect import RISK_DROP, collect, compact_table, judge_row
    from orchestrator.evaluation.evaluate import gold_rows

    project, task = llama_project, catalog.task()
    from conftest import REPO

    risky = [
        line
        for line in (REPO / "data/student_mental/test.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(json.loads(line)["output"])["risk_flag"] != "none"
    ]
    calm = (REPO / "data/student_mental/test.jsonl").read_text(encoding="utf-8").splitlines()[:6]
    (project.root / "data/student_mental/test.jsonl").write_text("\n".join(risky[:2] + calm) + "\n", encoding="utf-8")
    rows = gold_rows(project, task, "test")
    gold = [r["gold"] for r in rows]
    _fake_evaluation(project, task, rows, "adapter", "sft", gold)  # the adapter: every answer right
    lost = [dict(g) for g in gold]
    at_risk = next(i for i, g in enumerate(gold) if g["risk_flag"] != "none")
    lost[at_risk]["risk_flag"] = "none"  # the quantized model misses one at-risk example
    _fake_evaluation(project, task, rows, "gguf", "gguf", lost, "Q4_K_M")
    _fake_evaluation(project, task, rows, "merged", "merged", gold)
    found = {r.values["method"]: r for r in collect(project, task)}
    q4, merged = found["lora Q4_K_M"], found["lora merged"]
    n = len(rows)
    assert q4.values["agree_risk_flag"] == pytest.approx((n - 1) / n) and q4.values["agree_depression_level"] == 1.0
    assert q4.values["agreement_all"] == pytest.approx((n - 1) / n) and q4.values["agreement_n"] == n
    assert q4.values["risk_recall_change"] < 0 and q4.values[RISK_DROP] is True
    verdict = judge_row(q4, task)
    assert verdict.head == "NOT USABLE" and any("fewer at-risk examples than the adapter" in r for r in verdict.reasons)
    assert merged.values[RISK_DROP] is False and merged.values["agreement_all"] == 1.0
    assert judge_row(merged, task).head != "NOT USABLE" or "fewer at-risk" not in str(judge_row(merged, task))
    table = compact_table(list(found.values()), task, "test")
    assert "agrees with adapter" in table and "risk recall vs adapter" in table


def test_every_shipped_family_converts_with_llamacpp(catalog, smollm2_dir, tmp_path):
    """Each family's declared architecture, as a tiny random model with SmolLM2's tokenizer, through the converter.

    The architectures come from the family templates (`orch.architecture`), so a new family is covered by
    this test the day it is added. Tokenizers are the one substitute: the real ones are not on this machine.
    """
    from tinymodels import build_tiny_of_architecture

    families: dict[str, list[str]] = {}
    for model in catalog.model_names():
        task = catalog.task()
        architecture = catalog.settings(model, "lora", task).get("orch", {}).get("architecture")
        assert architecture, f"{model}: its family declares no orch.architecture"
        families.setdefault(architecture, []).append(model)
    assert len(families) >= 4
    for architecture, models in sorted(families.items()):
        llamacpp.check_architecture(architecture, ", ".join(models))  # what submit checks before queueing
        folder = build_tiny_of_architecture(tmp_path / architecture, architecture, smollm2_dir)
        out = tmp_path / f"{architecture}.gguf"
        llamacpp.convert(folder, out, log=lambda _m: None)
        assert out.read_bytes()[:4] == b"GGUF", architecture


def test_a_model_the_converter_cannot_convert_is_refused_before_training_is_queued(llama_project, catalog, tiny_llama):
    odd = tiny_llama.parent / "tiny-odd"
    shutil.copytree(tiny_llama, odd, dirs_exist_ok=True)
    config = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**config, "architectures": ["FancyNewForCausalLM"]}))
    template = LLAMA_TEMPLATE.replace("orch-test/tiny-llama", "orch-test/tiny-odd")
    (llama_project.templates / "models/tiny-odd.yaml.j2").write_text(template, encoding="utf-8")
    opts = SubmitOptions(method="lora", executor="local", sets=TRAIN, then=("export", "gguf"))
    with pytest.raises(OrchError, match="cannot convert FancyNewForCausalLM models to GGUF"):
        submit(catalog, ["tiny-odd"], opts, log=lambda _m: None)
    assert not any(r["event"] == "submitted" for r in ledger.read(llama_project.ledger))


def test_a_quantized_model_that_loses_a_risk_flag_at_its_threshold_is_flagged_too(llama_project, catalog):
    """Same argmax answers, but the quantized model's P(risk) no longer clears the threshold for one example."""
    from orchestrator.collect import RISK_DROP, collect, judge_row
    from orchestrator.evaluation.evaluate import gold_rows

    project, task = llama_project, catalog.task()
    rows = gold_rows(project, task, "test")
    same = [dict(r["gold"], risk_flag="none") for r in rows]  # argmax: no risk flagged by either
    at_risk = [0, 1]  # two examples made at-risk (gold), caught by the adapter only above the threshold
    for i in at_risk:
        rows[i]["gold"] = dict(rows[i]["gold"], risk_flag="suicidal")
    _fake_evaluation(
        project, task, rows, "adapter", "sft", same, p_risk=[0.6 if i in at_risk else 0.1 for i in range(len(rows))]
    )
    _fake_evaluation(
        project,
        task,
        rows,
        "gguf",
        "gguf",
        same,
        "Q4_K_M",
        p_risk=[0.6 if i == 0 else 0.4 if i == 1 else 0.1 for i in range(len(rows))],
    )
    q4 = next(r for r in collect(project, task) if r.values["method"] == "lora Q4_K_M")
    assert q4.values["agreement_all"] == 1.0 and q4.values["risk_recall_change"] == 0
    assert q4.values["risk_recall_change_at_threshold"] == pytest.approx(-0.5) and q4.values[RISK_DROP] is True
    verdict = judge_row(q4, task)
    assert verdict.head == "NOT USABLE" and any("at its val threshold -50%" in r for r in verdict.reasons)


# --- what a break pass found: each a class of input the first version mishandled -------------------------


def test_a_credential_never_reaches_the_chain_job_configs(llama_project, catalog):
    opts = SubmitOptions(
        method="lora",
        executor="local",
        sets=(*TRAIN, "hf_hub_token=hf_SECRETXYZ123456"),
        then=("export", "gguf", "eval"),
        dry_run=True,
        command="orch submit tiny-llama --then export,gguf,eval --set hf_hub_token=hf_SECRETXYZ123456",
    )
    plans = submit(catalog, ["tiny-llama"], opts, log=lambda _m: None)
    own = [p for p in plans if p.run.stage in ("gguf", "eval")]
    assert len(own) == 2 and all("hf_SECRETXYZ123456" not in p.text for p in own)
    assert all("orch submit tiny-llama" in p.text for p in own)  # the command is kept, redacted


def test_the_gguf_stage_reads_where_the_export_config_writes(llama_project, catalog):
    opts = SubmitOptions(
        method="lora",
        executor="local",
        sets=(*TRAIN, "export.export_dir=saves/elsewhere"),
        then=("export", "gguf"),
        dry_run=True,
    )
    gguf = next(p for p in submit(catalog, ["tiny-llama"], opts, log=lambda _m: None) if p.run.stage == "gguf")
    assert gguf.values["source"] == "saves/elsewhere"


def test_a_stage_whose_input_this_training_makes_stale_is_refused(llama_project, catalog):
    merged = llama_project.root / "saves/tiny-llama/lora/merged"
    merged.mkdir(parents=True)
    (merged / "config.json").write_text("{}")  # an old merged model on disk
    opts = SubmitOptions(method="lora", executor="local", sets=TRAIN, then=("gguf",), restart=True)
    with pytest.raises(OrchError, match="made from the adapter this submission trains anew") as caught:
        submit(catalog, ["tiny-llama"], opts, log=lambda _m: None)
    assert "--then export,gguf" in str(caught.value.fix)
    assert not any(r["event"] == "submitted" for r in ledger.read(llama_project.ledger))


def test_a_stage_waits_for_the_nearest_earlier_stage_of_its_inputs():
    from orchestrator.submit import Plan, _depends_on

    def plan(stage, job):
        return Plan(Run("m", "lora", stage), {}, "", {}, "fresh", job_id=job)

    assert _depends_on("gguf", {"sft": plan("sft", "J1")}) == ("J1",)  # no export in the chain: after training
    assert _depends_on("gguf", {"sft": plan("sft", "J1"), "export": plan("export", "J2")}) == ("J2",)
    assert _depends_on("gguf", {"sft": plan("sft", None)}) == ()  # training skipped: nothing to wait for
    chain = {"sft": plan("sft", "J1"), "export": plan("export", "J2"), "gguf": plan("gguf", "J3")}
    assert sorted(_depends_on("eval", chain)) == ["J1", "J2", "J3"]


def test_every_quantization_type_orch_accepts_really_quantizes(tiny_llama, tmp_path):
    """The accepted set is llama.cpp's own list minus REFUSED_TYPES; each one is tried on a tiny model."""
    f16 = tmp_path / "source-F16.gguf"
    llamacpp.convert(tiny_llama, f16, log=lambda _m: None)
    accepted = sorted(llamacpp.quant_types())
    assert {"Q4_K_M", "Q5_K_M", "Q8_0", "F16"} <= set(accepted)
    for quant in accepted:
        out = tmp_path / f"tiny-{quant}.gguf"
        llamacpp.quantize(f16, out, quant)
        assert out.read_bytes()[:4] == b"GGUF", quant
        out.unlink()
    assert llamacpp.check_quant_type("q5_k_m") == "Q5_K_M"
    for refused in sorted(llamacpp.REFUSED_TYPES):
        with pytest.raises(OrchError, match="importance matrix"):
            llamacpp.check_quant_type(refused)
    with pytest.raises(OrchError, match="no quantization type 0"):
        llamacpp.check_quant_type(0)


def test_a_sequence_longer_than_the_context_is_a_clear_error(tiny_llama, tmp_path):
    f16 = tmp_path / "tiny-F16.gguf"
    llamacpp.convert(tiny_llama, f16, log=lambda _m: None)
    model = llamacpp.GgufModel(f16, n_ctx=100)
    with pytest.raises(OrchError, match="does not fit llama.cpp's context of 100"):
        model.feed(list(range(10, 130)))
    model.close()


@pytest.mark.parametrize(
    ("defaults", "given", "said"),
    [
        (None, {"subjects": "1"}, "eval.subjects=1"),
        (None, {"subjects": ""}, "name the models to score"),
        (None, {"batch_size": '"8"'}, "eval.batch_size='8'"),
        (None, {"split": ""}, "has no such split"),
        ("Q8_0", {}, "must be a mapping"),
    ],
)
def test_bad_eval_and_gguf_settings_are_clear_errors(catalog, defaults, given, said):
    from orchestrator import stagejob

    stage = "gguf" if defaults == "Q8_0" else "eval"
    with pytest.raises(OrchError) as caught:
        stagejob.settings(stage, (), defaults, given, catalog.task())
    assert said in str(caught.value)


def _predictions(path, answers):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, "parsed": a}) + "\n" for i, a in answers.items()))
    return path


def test_agreement_counts_only_the_same_allowed_value(catalog, tmp_path):
    from orchestrator.evaluation.agreement import field_agreement

    task = catalog.task()
    good = {"depression_level": 1, "anxiety_level": 2, "risk_flag": "none", "student_distress_score": 3}
    ref = _predictions(tmp_path / "a.jsonl", {"1": good, "2": {"depression_level": 9}, "3": good})
    oth = _predictions(
        tmp_path / "b.jsonl", {"1": good, "2": {"depression_level": 9}, "3": {**good, "depression_level": True}}
    )
    agreement = field_agreement(task, ref, oth)
    assert agreement["n"] == 3 and agreement["same_examples"]
    assert agreement["depression_level"] == pytest.approx(1 / 3)  # 9 is not allowed; true is not 1
    assert agreement["anxiety_level"] == pytest.approx(2 / 3) and agreement["all"] == pytest.approx(1 / 3)


def test_no_risk_recall_change_between_different_examples_and_a_bad_file_is_named(catalog, tmp_path):
    from orchestrator.evaluation.agreement import against_adapter

    task = catalog.task()
    good = {"depression_level": 1, "anxiety_level": 2, "risk_flag": "none", "student_distress_score": 3}
    adapter = tmp_path / "adapter"
    _predictions(adapter / "predictions.jsonl", {str(i): good for i in range(6)})
    (adapter / "metrics.json").write_text(json.dumps({"risk": {"any_risk_recall": 1.0}}))
    limited = _predictions(tmp_path / "q4/predictions.jsonl", {str(i): good for i in range(2)})  # --limit 2
    vs = against_adapter(task, {"risk": {"any_risk_recall": 0.0}}, limited, adapter)
    assert vs["agreement"]["same_examples"] is False and vs["risk_recall_drop"] is None
    limited.write_text(limited.read_text() + "{broken\n")
    with pytest.raises(OrchError, match="re-run the evaluation") as caught:
        against_adapter(task, {}, limited, adapter)
    assert "predictions.jsonl" in str(caught.value.where) and ":3" in str(caught.value.where)
