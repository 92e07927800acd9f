"""Cleaning: width and whitespace normalisation, short-turn removal, anonymisation (see `anonymize`), deduplication."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

from orchestrator.data.anonymize import INVISIBLE, anonymize, replace_names
from orchestrator.data.dialogue import Dialogue, Turn

CJK = r"\u4e00-\u9fff"
FULLWIDTH = {chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF1A)}  # digits
FULLWIDTH.update({chr(c): chr(c - 0xFEE0) for c in list(range(0xFF21, 0xFF3B)) + list(range(0xFF41, 0xFF5B))})
FULLWIDTH["\u3000"] = " "
HALF_TO_FULL = {",": "，", "?": "？", "!": "！", ":": "：", ";": "；"}


def normalize_text(text: str) -> str:
    """Full-width letters and digits to ASCII, ASCII punctuation after Chinese to full-width, one space."""
    text = "".join(FULLWIDTH.get(ch, ch) for ch in INVISIBLE.sub("", text))
    text = re.sub(rf"(?<=[{CJK}])\s*([,?!:;])", lambda m: HALF_TO_FULL[m.group(1)], text)
    return " ".join(text.split())


@dataclass
class CleanStats:
    """What cleaning did, for stats.json."""

    dropped: Counter = field(default_factory=Counter)
    turns_dropped: Counter = field(default_factory=Counter)
    placeholders: Counter = field(default_factory=Counter)


def clean_dialogue(dialogue: Dialogue, stats: CleanStats) -> Dialogue | None:
    """Normalise and anonymise every turn; drop empty and one-character turns; None if unusable."""
    turns = []
    names: set[str] = set()
    texts = [anonymize(normalize_text(turn.text), stats.placeholders, names) for turn in dialogue.turns]
    for turn, text in zip(dialogue.turns, texts, strict=True):
        text = replace_names(text, names, stats.placeholders)
        if not text:
            stats.turns_dropped["empty"] += 1
            continue
        if len(text) <= 1:
            stats.turns_dropped["one_character"] += 1
            continue
        turns.append(Turn(turn.role, text))
    if not any(t.role == "user" for t in turns):
        stats.dropped["no_client_turn"] += 1
        return None
    if not any(t.role == "assistant" for t in turns):
        stats.dropped["no_counselor_turn"] += 1
        return None
    return Dialogue(dialogue.id, dialogue.source, tuple(turns), dialogue.topic, dialogue.meta)


def _shingles(text: str, k: int = 5) -> set[str]:
    return {text[i : i + k] for i in range(max(1, len(text) - k + 1))}


_RNG_A = [((0x9E3779B97F4A7C15 * (i + 1)) | 1) & 0xFFFFFFFFFFFFFFFF for i in range(64)]
_RNG_B = [(0xBF58476D1CE4E5B9 * (i + 7)) & 0xFFFFFFFFFFFFFFFF for i in range(64)]


def _minhash(shingles: set[str], count: int) -> list[int]:
    """MinHash signature: one 64-bit hash per shingle, `count` universal-hash permutations of it (numpy)."""
    import numpy as np

    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") for s in shingles),
        dtype=np.uint64,
        count=len(shingles),
    )
    a = np.array(_RNG_A[:count], dtype=np.uint64)[:, None]
    b = np.array(_RNG_B[:count], dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        return (a * hashes[None, :] + b).min(axis=1).tolist()


def deduplicate(dialogues: list[Dialogue], stats: CleanStats, threshold: float = 0.8) -> list[Dialogue]:
    """Drop exact duplicates, then near-duplicates (5-gram Jaccard >= threshold, MinHash-LSH candidates)."""
    seen: set[str] = set()
    unique = []
    for d in dialogues:
        key = hashlib.sha1("\n".join(t.text for t in d.turns).encode("utf-8")).hexdigest()
        if key in seen:
            stats.dropped["exact_duplicate"] += 1
            continue
        seen.add(key)
        unique.append(d)
    texts = ["".join(t.text for t in d.turns) for d in unique]
    shingles = [_shingles(t) for t in texts]
    bands: dict[tuple, list[int]] = {}
    permutations, rows = 32, 4
    for i, sh in enumerate(shingles):
        signature = _minhash(sh, permutations)
        for b in range(0, len(signature), rows):
            bands.setdefault((b, *signature[b : b + rows]), []).append(i)
    drop: set[int] = set()
    for members in bands.values():
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1 :]:
                if a in drop or b in drop:
                    continue
                jaccard = len(shingles[a] & shingles[b]) / max(1, len(shingles[a] | shingles[b]))
                if jaccard >= threshold:
                    drop.add(b)
    stats.dropped["near_duplicate"] += len(drop)
    return [d for i, d in enumerate(unique) if i not in drop]
