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
# A password inside a URL: everything between `user:` and the last `@` before the host.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)(?P<user>[^/\s:@]+):(?P<pw>\S+)@(?=[^@\s]*$|[^@\s]*\s)")
# `key=value`, `key: value`, `"key": "value"`, `--set=key=value` where the key names a credential.
_ASSIGNMENT = re.compile(
    r"(?P<key>(?<![\w.])[\w.-]*?(?:token|key|secret|password|passwd|credentials?))"
    r"(?P<sep>[\"']?\s*[=:]\s*[\"']?)(?P<value>[^\s\"',;]+)",
    re.I,
)
_BEARER = re.compile(r"(?P<word>Bearer\s+)(?P<value>\S+)", re.I)
# Values known to be credentials in this process (given with --set, or received by a job): redacted
# wherever they appear, whatever surrounds them.
_KNOWN: set[str] = set()
# Credentials that libraries read from the environment: the job exports these instead of passing them on.
ENV_EQUIVALENT = {"hf_hub_token": "HF_TOKEN", "ms_hub_token": "MODELSCOPE_API_TOKEN"}


def is_secret_key(key: str) -> bool:
    """Whether a config key (or `stage.key`) names a credential."""
    return bool(SECRET_KEY.search(str(key).rsplit(".", 1)[-1]))


def has_url_password(text: str) -> bool:
    """Whether `text` holds a URL with a password in it (`https://user:pass@host`)."""
    return _URL_CREDENTIALS.search(text) is not None


def remember(value: str) -> None:
    """Treat `value` (and each comma- or space-separated piece of it) as a credential from now on."""
    for piece in [value, *re.split(r"[\s,;]+", value)]:
        if len(piece) >= 4:
            _KNOWN.add(piece)


def redact_text(text: str) -> str:
    """Known credential values, `key=value` of credential keys, bearer tokens and URL passwords, replaced."""
    for value in sorted(_KNOWN, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    text = _BEARER.sub(lambda m: f"{m['word']}{REDACTED}", text)
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
            remember(value)
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
    """`key=value` command-line overrides for LLaMA-Factory, from the job's ORCH_SECRET_* variables.

    Hub tokens go to the variables the hub libraries read instead (`HF_TOKEN`), so they
    are not on a command line other users of the node can list; the rest have no
    other way into LLaMA-Factory. Every value is remembered for redaction.
    """
    environ = os.environ if environ is None else environ
    out = []
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        remember(value)
        if key in ENV_EQUIVALENT:
            environ[ENV_EQUIVALENT[key]] = value
        else:
            out.append(f"{key}={value}")
    return out
