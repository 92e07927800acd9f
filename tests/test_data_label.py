"""Teacher labeling against a real OpenAI-compatible server: LLaMA-Factory's own `llamafactory-cli api`.

The server serves the tiny random model, whose answers are not valid labels:
that exercises the failure listing, the cache and resuming after a kill. The
success path needs a teacher that answers well, which cannot run here, so one
test uses a canned local HTTP teacher and says so in its name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import TINY_ID

from orchestrator.data.label import Teacher, label_with_teacher
from orchestrator.data.pipeline import normalize, select

FIXTURES = Path(__file__).parent / "fixtures/cpsycoun"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llamafactory_api(model_cache, tmp_path_factory):
    """`llamafactory-cli api` serving the tiny model on localhost."""
    import requests

    port = free_port()
    config = tmp_path_factory.mktemp("api") / "api.yaml"
    config.write_text(
        f"model_name_or_path: {model_cache / TINY_ID}\ntemplate: qwen3_nothink\ninfer_backend: huggingface\n"
    )
    cli = Path(sys.executable).with_name("llamafactory-cli")
    proc = subprocess.Popen(
        [str(cli), "api", str(config)],
        env={**os.environ, "API_PORT": str(port), "API_HOST": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 180
    while True:
        try:
            requests.get(url + "/models", timeout=2)
            break
        except requests.RequestException:
            assert proc.poll() is None, "llamafactory-cli api exited"
            assert time.time() < deadline, "llamafactory-cli api did not start"
            time.sleep(1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def dialogues(tmp_path) -> Path:
    normalize([FIXTURES], tmp_path / "unified.jsonl")
    select(
        tmp_path / "unified.jsonl",
        tmp_path / "selected.jsonl",
        {"keywords": [], "min_assistant_chars": 1, "max_chars": 300, "max_turns": 6},
    )
    return tmp_path / "selected.jsonl"


def test_interrupted_labeling_resumes_from_cache_and_matches(project, llamafactory_api, dialogues, tmp_path):
    os.environ["ORCH_TEST_SECRET_KEY"] = "sk-test-never-written-1234"
    args = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "data",
        "label",
        str(dialogues),
        "--endpoint",
        llamafactory_api,
        "--model",
        "tiny",
        "--api-key-env",
        "ORCH_TEST_SECRET_KEY",
        "--concurrency",
        "1",
        "--rate",
        "3",
    ]
    interrupted = tmp_path / "run1" / "labeled.jsonl"
    interrupted.parent.mkdir()
    proc = subprocess.Popen([*args, "-o", str(interrupted)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = interrupted.with_suffix(".cache.jsonl")
    deadline = time.time() + 120
    while not cache.exists() or len(cache.read_text().splitlines()) < 5:
        assert time.time() < deadline and proc.poll() is None, "labeler finished or stalled before the kill"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(cache.read_text().splitlines())
    assert not interrupted.exists()  # nothing half-written
    resumed = subprocess.run([*args, "-o", str(interrupted)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    total = sum(1 for _ in dialogues.read_text().splitlines())
    assert len(cache.read_text().splitlines()) == total  # only the missing ones were asked again
    assert before < total
    again = subprocess.run([*args, "-o", str(interrupted)], capture_output=True, text=True, timeout=300)
    assert len(cache.read_text().splitlines()) == total  # a rerun costs nothing
    assert again.returncode == 0
    clean = tmp_path / "run2" / "labeled.jsonl"
    clean.parent.mkdir()
    subprocess.run([*args, "-o", str(clean)], capture_output=True, text=True, timeout=300, check=True)
    assert interrupted.read_text() == clean.read_text()
    failures = interrupted.with_suffix(".failures.jsonl").read_text()
    assert failures == clean.with_suffix(".failures.jsonl").read_text()
    assert len(failures.splitlines()) + len(interrupted.read_text().splitlines()) == total  # none dropped silently
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert "sk-test-never-written-1234" not in path.read_text(errors="ignore"), path


class _CannedTeacher(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint answering from a lexicon: a stand-in for a strong teacher."""

    calls = 0

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        prompt = body["messages"][0]["content"]
        risk = "suicidal" if "轻生" in prompt or "自杀" in prompt else "none"
        answer = (
            f'好的：```json\n{{"depression_level": 1, "anxiety_level": 2, "risk_flag": "{risk}", '
            '"student_distress_score": 4}\n```'
        )
        if type(self).calls % 5 == 0:
            self.send_response(503)  # a transient failure: retried with backoff
            self.end_headers()
            return
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_teacher_labels_with_retries_canned_teacher_mock(catalog, dialogues, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _CannedTeacher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        teacher = Teacher(f"http://127.0.0.1:{server.server_address[1]}/v1", "canned")
        out = tmp_path / "labeled.jsonl"
        summary = label_with_teacher(catalog.task(), dialogues, out, teacher, concurrency=3, backoff=0.01)
    finally:
        server.shutdown()
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert summary["failed"] == 0 and len(rows) == summary["labeled"] > 0
    assert all(r["labels"]["anxiety_level"] == 2 and r["labeler"].endswith("#canned") for r in rows)
    for r in rows:
        text = "".join(t["text"] for t in r["turns"])
        assert (r["labels"]["risk_flag"] == "suicidal") == ("轻生" in text or "自杀" in text)
