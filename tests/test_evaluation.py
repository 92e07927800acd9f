"""Evaluation on the task: one prompt path, constrained decoding, the extractor, metrics, orch eval."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_ID

from orchestrator.answers import extract
from orchestrator.evaluation import decoding
from orchestrator.evaluation.metrics import categorical_metrics, ordinal_metrics, quadratic_weighted_kappa, score
from orchestrator.evaluation.prompts import load_template, prompt_ids


@pytest.fixture(scope="module")
def tiny(model_cache):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_cache / TINY_ID
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(
        str(path)
    )


def test_inference_prompt_equals_training_prefix(project, catalog, model_cache):
    """LLaMA-Factory's own data pipeline encodes a training row; our prompt is its prefix up to the answer."""
    import os

    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    args = {
        "model_name_or_path": str(model_cache / TINY_ID),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "dataset": "student_mental_train",
        "dataset_dir": str(project.configs),
        "template": "qwen3_nothink",
        "cutoff_len": 1024,
        "output_dir": str(project.root / "out"),
        "overwrite_cache": True,
        "preprocessing_num_workers": 1,
        "report_to": "none",
        "use_cpu": True,
    }
    cwd = os.getcwd()
    os.chdir(project.root)
    try:
        model_args, data_args, training_args, _, _ = get_train_args(args)
        tokenizer_module = load_tokenizer(model_args)
        template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
        dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)
    finally:
        os.chdir(cwd)
    rows = [json.loads(x) for x in (project.root / "data/student_mental/train.jsonl").read_text().splitlines()]
    tokenizer = tokenizer_module["tokenizer"]
    ours = load_template(tokenizer, "qwen3_nothink")
    for i in (0, 1, 7):
        example = dataset["train_dataset"][i]
        answer_start = next(k for k, label in enumerate(example["labels"]) if label != -100)
        assert prompt_ids(ours, tokenizer, rows[i]) == example["input_ids"][:answer_start]
        assert tokenizer.decode(example["input_ids"][answer_start:]).startswith(rows[i]["output"])


def test_constrained_decoding_is_always_valid_even_untrained(catalog, tiny):
    model, tokenizer = tiny
    task = catalog.task()
    template = load_template(tokenizer, "qwen3_nothink")
    rows = [json.loads(x) for x in (catalog.project.root / "data/student_mental/test.jsonl").read_text().splitlines()]
    out = decoding.constrained(model, tokenizer, task, [prompt_ids(template, tokenizer, r) for r in rows])
    assert len(out) == len(rows)
    for item in out:
        found = extract(task, item.raw)
        assert found.strict and found.valid, item.raw
        assert set(item.probabilities) == set(task.field_names)
        for name, probs in item.probabilities.items():
            assert set(probs) == {str(v) for v in task.field_values(name)}
            assert abs(sum(probs.values()) - 1) < 1e-6
            assert max(probs, key=probs.get) == str(item.labels[name])


def test_batched_constrained_equals_one_by_one(catalog, tiny):
    model, tokenizer = tiny
    task = catalog.task()
    template = load_template(tokenizer, "qwen3_nothink")
    rows = [json.loads(x) for x in (catalog.project.root / "data/student_mental/test.jsonl").read_text().splitlines()]
    prompts = [prompt_ids(template, tokenizer, r) for r in rows[:4]]
    batched = decoding.constrained(model, tokenizer, task, prompts)
    for prompt, together in zip(prompts, batched, strict=True):
        alone = decoding.constrained(model, tokenizer, task, [prompt])[0]
        assert alone.labels == together.labels
        for name in task.field_names:
            for value, p in alone.probabilities[name].items():
                assert together.probabilities[name][value] == pytest.approx(p, abs=1e-4)


def test_both_decodings_from_one_encoding_equal_each_alone(catalog, tiny):
    """`both` reuses the prompt cache for generation: same labels and same text as the two separate decodings."""
    model, tokenizer = tiny
    task = catalog.task()
    template = load_template(tokenizer, "qwen3_nothink")
    rows = [json.loads(x) for x in (catalog.project.root / "data/student_mental/test.jsonl").read_text().splitlines()]
    prompts = [prompt_ids(template, tokenizer, r) for r in rows[:5]]  # different lengths: left padding
    assert len({len(p) for p in prompts}) > 1
    budget = decoding.answer_budget(task, tokenizer)
    chosen, generated = decoding.both(model, tokenizer, task, prompts, budget)
    assert [c.labels for c in chosen] == [c.labels for c in decoding.constrained(model, tokenizer, task, prompts)]
    assert [g.raw for g in generated] == [g.raw for g in decoding.free(model, tokenizer, prompts, budget)]
    assert len(generated) == len(prompts)


def test_free_decoding_budget_fits_the_longest_answer_and_more(catalog, tiny):
    _, tokenizer = tiny
    task = catalog.task()
    longest = {"depression_level": 0, "anxiety_level": 0, "risk_flag": "self_harm", "student_distress_score": 0}
    tokens = len(tokenizer.encode(task.canonical_answer(longest), add_special_tokens=False))
    assert decoding.answer_budget(task, tokenizer) == tokens * 3 // 2 + 2


GOOD = {"depression_level": 1, "anxiety_level": 2, "risk_flag": "suicidal", "student_distress_score": 7}


@pytest.mark.parametrize(
    ("raw", "strict", "valid", "labels"),
    [
        (json.dumps(GOOD), True, True, GOOD),
        (
            '{"depression_level": 1, " Anxiety_level": 2, "risk_flag": "suicidal", "student_distress_score": 7}',
            False,
            True,
            GOOD,
        ),
        ("风险_flag:自杀, depression_level(0-3): 1, anxiety_level: 2, student_distress_score: 7", False, True, GOOD),
        (
            "depression_level(0-3): 1\nanxiety_level(0-3): 2\nrisk_flag: suicidal\nstudent_distress_score(0-9): 7",
            False,
            True,
            GOOD,
        ),
        ("Sure! Here is the assessment:\n```json\n" + json.dumps(GOOD) + "\n```\nTake care.", False, True, GOOD),
        (
            "{'depression_level': 1, 'anxiety_level': 2, 'risk_flag': 'suicidal', 'student_distress_score': 7,}",
            False,
            True,
            GOOD,
        ),
        ('{"抑郁程度": 1, "焦虑程度": 2, "风险": "自杀", "困扰分数": "7分"}', False, True, GOOD),
        (
            '{"Depression_Level": "1", "anxiety-level": 2, "risk_flag": "Suicidal", "student_distress_score": 7}',
            False,
            True,
            GOOD,
        ),
        (
            '{"depression_level": 5, "anxiety_level": 2, "risk_flag": "suicidal", "student_distress_score": 7}',
            False,
            False,
            None,
        ),
        ("I am not able to assess this.", False, False, None),
        ('{"depression_level": 1, "anxiety_level": 2}', False, False, None),
    ],
)
def test_extractor_on_the_fields_broken_outputs(catalog, raw, strict, valid, labels):
    found = extract(catalog.task(), raw)
    assert (found.strict, found.valid) == (strict, valid), found
    if labels is not None:
        assert found.labels == labels


def test_ordinal_metrics_by_hand():
    m = ordinal_metrics([0, 1, 2, 3], [0, 2, 2, None], [0, 1, 2, 3])
    assert m["accuracy"] == 0.5 and m["within1"] == 0.75 and m["mae"] == pytest.approx(1 / 3)
    assert m["parsed"] == 3
    # By hand, gold [0,1,2] pred [0,2,2] over 4 levels, w_ij = (i-j)^2/9: observed sum(w*O) = 1/9;
    # expected E_ij = row_i * col_j / 3 gives sum(w*E) = (8 + 1 + 2 + 4)/27 = 5/9; QWK = 1 - (1/9)/(5/9) = 0.8
    assert quadratic_weighted_kappa([0, 1, 2], [0, 2, 2], [0, 1, 2, 3]) == pytest.approx(0.8)
    assert quadratic_weighted_kappa([0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]) == 1.0


def test_categorical_and_risk_metrics_by_hand(catalog):
    m = categorical_metrics(
        ["none", "none", "suicidal", "violence"],
        ["none", "suicidal", "suicidal", None],
        ["none", "suicidal", "self_harm", "violence"],
    )
    assert m["accuracy"] == 0.5
    assert m["per_class"]["suicidal"]["precision"] == 0.5 and m["per_class"]["suicidal"]["recall"] == 1.0
    assert m["per_class"]["none"]["recall"] == 0.5 and m["per_class"]["violence"]["recall"] == 0.0
    assert m["confusion"]["violence"]["invalid"] == 1
    # F1: none 2/3, suicidal 2/3, violence 0 (self_harm absent) -> 4/9
    assert m["macro_f1"] == pytest.approx(4 / 9)
    task = catalog.task()
    base = {"depression_level": 0, "anxiety_level": 0, "student_distress_score": 0}
    gold = [{**base, "risk_flag": r} for r in ("suicidal", "self_harm", "violence", "none")]
    pred = [{**base, "risk_flag": r} for r in ("violence", "self_harm", "none", "none")]
    s = score(task, gold, pred + [], [True, True, True, True])
    assert s["risk"]["any_risk_recall"] == pytest.approx(2 / 3)  # suicidal->violence still counts as caught
    assert s["risk"]["per_class_recall"]["suicidal"]["recall"] == 0.0
    assert s["risk"]["per_class_recall"]["self_harm"]["recall"] == 1.0
    assert s["all_fields_correct"] == 0.5 and s["valid_rate"] == 1.0
    invalid = score(task, gold, pred, [False, True, True, True])  # an unparsable answer never counts as caught
    assert invalid["risk"]["any_risk_recall"] == pytest.approx(1 / 3) and invalid["valid_rate"] == 0.75


def test_orch_eval_on_a_trained_run_and_on_llamafactory_predictions(project, catalog, orch):
    from test_submit import FAST, SFT, wait_state

    from orchestrator.runs import Run
    from orchestrator.submit import SubmitOptions, submit

    opts = SubmitOptions(
        then=("predict", "export"),
        executor="local",
        sets=FAST + ("max_steps=4", "save_steps=2", "logging_steps=1", "predict.max_new_tokens=50"),
    )
    submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
    wait_state(project, SFT)
    result = orch("eval", "tiny-qwen3/lora", "--limit", "6", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("risk: any-risk recall")  # risk first
    out = project.root / "saves/tiny-qwen3/lora/sft/eval/test/constrained"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid_rate"] == 1.0 and metrics["n"] == 6 and metrics["parse"]["strict_rate"] == 1.0
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and all(x["status"] == "strict" and x["gold"] and x["probabilities"] for x in lines)
    free = orch("eval", "tiny-qwen3/lora", "--limit", "2", "--decoding", "free")
    assert free.exit_code == 0, free.output
    free_metrics = json.loads((out.parent / "free/metrics.json").read_text())
    assert set(free_metrics["parse"]) == {"strict_rate", "repaired_rate", "schema_valid_rate"}
    wait_state(project, Run("tiny-qwen3", "lora", "predict"))
    generated = project.root / "saves/tiny-qwen3/lora/predict/generated_predictions.jsonl"
    scored = orch("eval", "--predictions", str(generated))
    assert scored.exit_code == 0, scored.output
    llf = json.loads((generated.parent / "eval-llamafactory/metrics.json").read_text())
    assert llf["n"] == 10 and llf["decoding"] == "llamafactory-predict"
    wait_state(project, Run("tiny-qwen3", "lora", "export"))
    merged = orch("eval", "tiny-qwen3/lora", "--merged", "--limit", "4")
    assert merged.exit_code == 0, merged.output
    merged_metrics = json.loads(
        (project.root / "saves/tiny-qwen3/lora/merged/eval/test/constrained/metrics.json").read_text()
    )
    assert merged_metrics["valid_rate"] == 1.0 and merged_metrics["n"] == 4


@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_answer_pieces_tokenize_like_the_whole_answer(catalog, model_cache, smollm2_dir, which):
    """Constrained decoding scores the answer in pieces; their tokens must be the training answer's tokens."""
    from transformers import AutoTokenizer

    from orchestrator.evaluation.decoding import _key_piece, _value_piece

    tokenizer = AutoTokenizer.from_pretrained(str(model_cache / TINY_ID if which == "tiny" else smollm2_dir))
    task = catalog.task()
    names = task.field_names
    for labels in (
        GOOD,
        {"depression_level": 0, "anxiety_level": 3, "risk_flag": "self_harm", "student_distress_score": 9},
    ):
        pieces = []
        for i, name in enumerate(names):
            pieces.append(_key_piece(i, name))
            pieces.append(_value_piece(labels[name], i == len(names) - 1))
        assert "".join(pieces) == task.canonical_answer(labels)
        tokens = [t for piece in pieces for t in tokenizer.encode(piece, add_special_tokens=False)]
        assert tokens == tokenizer.encode(task.canonical_answer(labels), add_special_tokens=False)


@pytest.mark.parametrize("decodings", [(), ("free", "free"), ("constrained", "beam")])
def test_bad_decodings_are_refused_before_loading_a_model(project, catalog, decodings):
    from orchestrator.errors import OrchError
    from orchestrator.evaluation.evaluate import Scored, evaluate_decodings
    from orchestrator.layout import Run

    with pytest.raises(OrchError, match="bad decodings"):
        evaluate_decodings(project, catalog.task(), Scored(Run("no-such", "lora", "sft")), decodings=decodings)
