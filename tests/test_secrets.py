"""Credentials never persist: not in configs, job files, the ledger, steps.md or logs; the job gets them."""

from __future__ import annotations

import json

import pytest
from conftest import cancel_everything

from orchestrator.runs import Run
from orchestrator.secrets import (
    REDACTED,
    is_secret_key,
    job_env,
    overrides_from_env,
    redact,
    redact_text,
    split_sets,
)

SECRET = "hf_SeCrEt0123456789abcdef"


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("hf_hub_token", True),
        ("predict.hf_hub_token", True),
        ("ms_hub_token", True),
        ("swanlab_api_key", True),
        ("aws_secret_access_key", True),
        ("password", True),
        ("max_new_tokens", False),
        ("add_special_tokens", False),
        ("tokenized_path", False),
        ("new_special_tokens_config", False),
        ("lora_target", False),
    ],
)
def test_credential_keys_are_recognised_by_name(key, secret):
    assert is_secret_key(key) is secret


def test_command_lines_and_urls_are_redacted():
    line = f"orch submit m --set hf_hub_token={SECRET} --set lr=1e-4 --repo https://bob:{SECRET}@host/x"
    out = redact_text(line)
    assert SECRET not in out and f"hf_hub_token={REDACTED}" in out and "lr=1e-4" in out
    assert f"https://bob:{REDACTED}@host/x" in out
    assert redact({"a": [{"hub_token": SECRET}], "b": f"password: {SECRET}"}) == {
        "a": [{"hub_token": REDACTED}],
        "b": f"password: {REDACTED}",
    }


def test_credentials_travel_through_the_environment_only():
    public, secret = split_sets(("lr=1", f"hf_hub_token={SECRET}", f"export.ms_hub_token={SECRET}"))
    assert public == ("lr=1",) and len(secret) == 2
    env = job_env(secret, "sft")
    assert env == {"ORCH_SECRET_HF_HUB_TOKEN": SECRET}
    assert overrides_from_env(env) == [] and env["HF_TOKEN"] == SECRET  # hub tokens: the hub's own variable
    other = {"ORCH_SECRET_SWANLAB_API_KEY": SECRET}
    assert overrides_from_env(other) == [f"swanlab_api_key={SECRET}"]  # no other way into LLaMA-Factory


def test_a_credential_in_a_template_fails_validation(project, catalog):
    from orchestrator.validation import validate_run

    path = project.templates / "models/tiny-qwen3.yaml.j2"
    path.write_text(path.read_text().replace("cutoff_len: 1024", f"cutoff_len: 1024\nhf_hub_token: {SECRET}"))
    report = validate_run(catalog, "tiny-qwen3", "lora", catalog.task(), sets=("bf16=false",))
    found = [p for p in report.errors if p.rule == "credentials"]
    assert found and "hf_hub_token (set in templates/models/tiny-qwen3.yaml.j2)" in found[0].where


def test_a_submitted_credential_is_in_no_file_and_reaches_the_job(project, catalog):
    """The issue's case: `--set hf_hub_token=...` was written in clear to the config, ledger and steps.md."""
    from test_submit import wait_state

    from orchestrator.submit import SubmitOptions, submit

    sets = ("bf16=false", "per_device_train_batch_size=2", "max_steps=2", "save_steps=1", f"hf_hub_token={SECRET}")
    opts = SubmitOptions(executor="local", sets=sets, command=f"orch submit tiny-qwen3 --set hf_hub_token={SECRET}")
    try:
        submit(catalog, ["tiny-qwen3"], opts, log=lambda _m: None)
        wait_state(project, Run("tiny-qwen3", "lora", "sft"))
    finally:
        cancel_everything(project, "local")
    leaks = [path for path in project.root.rglob("*") if path.is_file() and SECRET.encode() in path.read_bytes()]
    assert leaks == []
    log = next(project.jobs.glob("tiny-qwen3_lora_sft/*/job.log")).read_text()
    assert "credentials from the submitting environment: hf_hub_token" in log  # it reached the job
    submitted = [json.loads(x) for x in project.ledger.read_text().splitlines() if '"submitted"' in x]
    assert f"hf_hub_token={REDACTED}" in submitted[0]["command"]


@pytest.mark.parametrize(
    "text",
    [
        f"orch submit m --set=hf_hub_token={SECRET}",
        f'{{"hf_hub_token": "{SECRET}"}}',
        f"hf_hub_token = {SECRET}",
        f"https://bob:pa/{SECRET}@host/x",
        f"Authorization: Bearer {SECRET}",
    ],
)
def test_credentials_in_other_spellings_are_redacted(text):
    assert SECRET not in redact_text(text)


def test_a_credential_value_is_redacted_wherever_it_appears():
    split_sets(("password=first part,second-part",))  # as submit does: the values are remembered
    assert "second-part" not in redact_text("log: second-part was used") and "first" not in redact_text("first part")


def test_a_line_break_in_a_value_cannot_forge_a_steps_entry(project):
    from orchestrator.runs import record_event

    record_event(project, Run("m", "lora", "sft"), "submitted", command="orch x\n\n## 2026 · finished · m · job 9")
    assert "\n## 2026 · finished" not in project.steps.read_text()
