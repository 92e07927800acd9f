"""Credentials: recognised by key name or inside URLs, kept out of every file orch writes.

A `--set hf_hub_token=...` never reaches the job's config, the ledger, steps.md or a
log: submit splits it off, hands it to the job through its environment
(`ORCH_SECRET_<KEY>`), and the job passes it to LLaMA-Factory as a command-line
override. Every journal writer runs what it writes through `redact`.
"""

from __future__ import annotations

import os
import re
from typing import Any

REDACTED = "<redacted>"
ENV_PREFIX = "ORCH_SECRET_"
# hf_hub_token, hub_token, api_key, swanlab_api_key, *_secret, password; not max_new_tokens or tokenized_path.
SECRET_KEY = re.compile(
    r"(^|_)(token|key|secret|password|passwd|credentials?)$|(^|_)(api_?key|secret|password|passwd)(_|$)", re.I
)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)(?P<user>[^/\s:@]+):(?P<pw>[^/\s@]+)@")
_ASSIGNMENT = re.compile(r"(?P<key>[A-Za-z_][\w.-]*)(?P<sep>=|:\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;]+)")


def is_secret_key(key: str) -> bool:
    """Whether a config key (or `stage.key`) names a credential."""
    return bool(SECRET_KEY.search(str(key).rsplit(".", 1)[-1]))


def redact_text(text: str) -> str:
    """`key=value` / `key: value` of credential keys and passwords inside URLs, replaced."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    return _ASSIGNMENT.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}" if is_secret_key(m["key"]) else m.group(0), text)


def redact(value: Any) -> Any:
    """A copy of a record (dicts, lists, strings) with every credential replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(k) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def split_sets(sets: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(`--set` items without credentials, {`[stage.]key`: value} of the credential ones)."""
    public, secret = [], {}
    for item in sets:
        key, sep, value = item.partition("=")
        if sep and is_secret_key(key.strip()):
            secret[key.strip()] = value
        else:
            public.append(item)
    return tuple(public), secret


def job_env(secrets: dict[str, str], stage: str) -> dict[str, str]:
    """The environment a job of `stage` gets its credentials through (never written to a file)."""
    out = {}
    for key, value in secrets.items():
        head, dot, name = key.rpartition(".")
        if not dot or head == stage:
            out[ENV_PREFIX + name.upper()] = value
    return out


def overrides_from_env(environ: os._Environ | dict[str, str] | None = None) -> list[str]:
    """`key=value` command-line overrides for LLaMA-Factory, from the job's ORCH_SECRET_* variables."""
    environ = os.environ if environ is None else environ
    return [f"{k[len(ENV_PREFIX) :].lower()}={v}" for k, v in sorted(environ.items()) if k.startswith(ENV_PREFIX)]
