"""The unified dialogue format and readers of raw corpora."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from orchestrator.datasets import ROLE_LABELS

# Speaker labels of CPsyCounD (.txt) and CPsyCounE (JSON lists), by role (simplified and traditional).
ROLE_NAMES = {
    "user": ("来访者", "求助者", "來訪者", "來访者", "来訪者"),
    "assistant": ("心理咨询师", "咨询师", "支持者", "心理諮詢師", "諮詢師"),
}
_NAMES = "|".join(sorted((n for names in ROLE_NAMES.values() for n in names), key=len, reverse=True))
_OPEN, _CLOSE = r"[\s\u200b-\u200d\u2060\ufeff【\[（(*#]*", r"[\s】\]）)*]*"
# A label may be decorated and qualified: 【来访者】：, **心理咨询师**：, 来访者（母亲）：, 来访者A：.
_ROLE = re.compile(rf"^{_OPEN}(?P<name>{_NAMES})(?:[（(][^）)：:]{{0,8}}[）)]|[A-Za-z0-9]{{1,2}})?{_CLOSE}[：:]\s*")
# Something shaped like a label that is not one orch knows (旁白：, 母亲：): reported, never guessed.
LABEL_LIKE = re.compile(rf"^{_OPEN}(?P<name>[\u4e00-\u9fffA-Za-z]{{1,6}}){_CLOSE}[：:]")
# A second known label inside a line, after the end of a sentence: 来访者：好的。心理咨询师：那我们开始吧
INLINE_LABEL = re.compile(rf"(?<=[。！？!?…~～])\s*(?={_OPEN}(?:{_NAMES}){_CLOSE}[：:])")
_ROLE_OF = {name: role for role, names in ROLE_NAMES.items() for name in names}


@dataclass(frozen=True)
class Turn:
    role: str  # "user" (client) or "assistant" (counselor)
    text: str


@dataclass(frozen=True)
class Dialogue:
    """One dialogue in the unified format."""

    id: str
    source: str
    turns: tuple[Turn, ...]
    topic: str | None = None
    meta: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        """The unified format: id, source, topic, turns with roles user/assistant."""
        return {
            "id": self.id,
            "source": self.source,
            "topic": self.topic,
            "turns": [{"role": t.role, "text": t.text} for t in self.turns],
        }

    @classmethod
    def from_json(cls, data: dict) -> Dialogue:
        return cls(
            data["id"], data["source"], tuple(Turn(t["role"], t["text"]) for t in data["turns"]), data.get("topic")
        )

    def client_text(self) -> str:
        return "\n".join(t.text for t in self.turns if t.role == "user")

    def render(self) -> str:
        """The dialogue as model input: one `角色：text` line per turn."""
        return "\n".join(f"{ROLE_LABELS[t.role]}：{t.text}" for t in self.turns)


def split_role(line: str) -> Turn | None:
    """A turn from a line that starts with a speaker label (invisible marks before it ignored), else None."""
    match = _ROLE.match(line)
    if match is None:
        return None
    return Turn(_ROLE_OF[match["name"]], line[match.end() :].strip())


def tail_truncate(dialogue: Dialogue, max_chars: int, max_turns: int) -> Dialogue:
    """Keep the most recent turns within both limits (at least the last turn, cut at its end)."""
    kept: list[Turn] = []
    total = 0
    for turn in reversed(dialogue.turns):
        if len(kept) >= max_turns or (kept and total + len(turn.text) > max_chars):
            break
        kept.append(turn)
        total += len(turn.text)
    if kept and len(kept[0].text) > max_chars:
        kept[0] = Turn(kept[0].role, kept[0].text[-max_chars:])
    return Dialogue(dialogue.id, dialogue.source, tuple(reversed(kept)), dialogue.topic, dialogue.meta)


WINDOW_SUFFIX = re.compile(r"#[wr]\d+$")  # `<dialogue id>#w<k>`: a window; `#r<k>`: an oversampled repeat


def dialogue_of(row_id: str) -> str:
    """The dialogue a row comes from: its id without window or repeat suffixes (splits never divide one)."""
    while WINDOW_SUFFIX.search(row_id):
        row_id = WINDOW_SUFFIX.sub("", row_id)
    return row_id


def windows(dialogue: Dialogue, max_chars: int, max_turns: int, count: int) -> list[Dialogue]:
    """Up to `count` consecutive windows of a dialogue, from its end, each within both limits.

    `count` 1 is the tail alone under the dialogue's own id (`tail_truncate`). Otherwise window k (1 =
    the most recent) is `<id>#w<k>`; a window without a client turn is skipped (nothing to assess).
    """
    if count <= 1:
        return [tail_truncate(dialogue, max_chars, max_turns)]
    out: list[Dialogue] = []
    turns = dialogue.turns
    while turns and len(out) < count:
        window = tail_truncate(replace(dialogue, turns=turns), max_chars, max_turns)
        turns = turns[: len(turns) - len(window.turns)]
        if any(t.role == "user" and t.text.strip() for t in window.turns):
            out.append(replace(window, id=f"{dialogue.id}#w{len(out) + 1}"))
    return out
