"""`orch data label`: the four labels from a teacher model behind any OpenAI-compatible endpoint, or rules.

Teacher labeling runs requests concurrently under a rate limit, retries with
backoff, and keeps every answer in a cache keyed by (dialogue hash, prompt
hash, teacher): an interrupted run resumes where it stopped and a rerun costs
nothing. Rows the teacher fails on are listed in `<out>.failures.jsonl`, never
dropped silently. The API key is read from an environment variable only and
is never written anywhere.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.answers import extract
from orchestrator.data.dialogue import Dialogue
from orchestrator.data.pipeline import read_unified
from orchestrator.fileio import write_text_atomic
from orchestrator.rules_labeler import load_rules
from orchestrator.task import Task


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Teacher:
    """An OpenAI-compatible chat endpoint and model."""

    endpoint: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0

    @property
    def ident(self) -> str:
        return f"{self.endpoint.rstrip('/')}#{self.model}"


class RateLimit:
    """At most `per_second` request starts per second, across threads."""

    def __init__(self, per_second: float | None):
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        time.sleep(max(0.0, start - now))


class Cache:
    """Append-only JSON lines of teacher answers, keyed by dialogue, prompt and teacher."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by an interruption
                self.entries[entry["key"]] = entry

    def add(self, entry: dict) -> None:
        self.entries[entry["key"]] = entry
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _request(teacher: Teacher, task: Task, prompt: str, use_schema: bool) -> str:
    import requests

    headers = {"Content-Type": "application/json"}
    key = os.environ.get(teacher.api_key_env)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body: dict[str, Any] = {
        "model": teacher.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": 256,
    }
    if use_schema:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": task.name, "schema": task.schema, "strict": True},
        }
    response = requests.post(
        teacher.endpoint.rstrip("/") + "/chat/completions", json=body, headers=headers, timeout=teacher.timeout
    )
    if response.status_code in (400, 422) and use_schema:
        raise _SchemaUnsupported(response.text[:200])
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"] or ""


class _SchemaUnsupported(Exception):
    pass


def label_with_teacher(
    task: Task,
    source: Path,
    out: Path,
    teacher: Teacher,
    *,
    concurrency: int = 4,
    rate: float | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Label every dialogue of `source`; write `out`, `<out>.failures.jsonl`; cache in `<out>.cache.jsonl`."""
    dialogues = read_unified(source)[:limit] if limit else read_unified(source)
    cache = Cache(out.with_suffix(".cache.jsonl"))
    prompt_hash = _sha(task.instruction + json.dumps(task.schema, sort_keys=True))
    limiter = RateLimit(rate)
    schema_ok = {"value": True}

    def key_of(d: Dialogue) -> str:
        return _sha(f"{_sha(d.render())}|{prompt_hash}|{teacher.ident}")

    def work(d: Dialogue) -> None:
        prompt = task.user_prompt(d.render())
        error = ""
        for attempt in range(retries + 1):
            limiter.wait()
            try:
                raw = _request(teacher, task, prompt, schema_ok["value"])
                cache.add({"key": key_of(d), "id": d.id, "teacher": teacher.ident, "raw": raw})
                return
            except _SchemaUnsupported:
                schema_ok["value"] = False  # the server has no JSON-schema mode: extract instead
            except Exception as exc:  # noqa: BLE001 - network and server errors are retried, then listed
                error = f"{type(exc).__name__}: {exc}"[:300]
                time.sleep(backoff * 2**attempt)
        raise RuntimeError(error)

    todo = [d for d in dialogues if key_of(d) not in cache.entries]
    transport_failures: dict[str, str] = {}
    done = len(dialogues) - len(todo)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(work, d): d for d in todo}
        for future in as_completed(futures):
            try:
                future.result()
            except RuntimeError as exc:
                transport_failures[futures[future].id] = str(exc)
            done += 1
            if progress:
                progress(done, len(dialogues))
    return _write_outputs(task, dialogues, out, cache, key_of, transport_failures, teacher.ident)


def _write_outputs(task, dialogues, out, cache, key_of, transport_failures, teacher_ident) -> dict[str, Any]:
    lines, failures = [], []
    for d in dialogues:
        entry = cache.entries.get(key_of(d))
        if entry is None:
            failures.append({"id": d.id, "reason": transport_failures.get(d.id, "no answer")})
            continue
        found = extract(task, entry["raw"])
        if not found.valid:
            failures.append({"id": d.id, "reason": "; ".join(found.errors) or "invalid", "raw": entry["raw"][:300]})
            continue
        lines.append(json.dumps({**d.to_json(), "labels": found.labels, "labeler": teacher_ident}, ensure_ascii=False))
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    write_text_atomic(
        out.with_suffix(".failures.jsonl"), "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failures)
    )
    return {"labeled": len(lines), "failed": len(failures), "cached": len(cache.entries)}


def label_with_rules(task: Task, source: Path, out: Path) -> dict[str, Any]:
    """The transparent lexicon baseline: the task file's `baselines: rules:`, on the client's turns."""
    labeler = load_rules(task)
    lines = []
    for d in read_unified(source):
        labels = labeler.label(d.client_text())
        lines.append(json.dumps({**d.to_json(), "labels": labels, "labeler": "rules"}, ensure_ascii=False))
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    write_text_atomic(out.with_suffix(".failures.jsonl"), "")
    return {"labeled": len(lines), "failed": 0}
