"""The one reader of every file orch takes in: raw corpora, JSONL, JSON, YAML, predictions, labeled rows.

Every input goes through `read_text`: a byte-order mark is stripped (UTF-8,
UTF-16, UTF-32), UTF-8 is tried first and, when it fails, GB18030 (a superset
of GBK and GB2312, the usual encodings of Chinese corpora) or the encoding the
caller declares; line endings become `\\n`. What it used is on the result
(`Decoded.encoding`) for the stats. A file it cannot decode, a JSON line that
does not parse, a YAML key given twice, all raise `InputError` naming
file:line:column and the fix, so nothing is silently dropped or misread.

JSON lines are split on `\\n` only: `str.splitlines` would also split on
U+2028 and friends, which `json.dumps(..., ensure_ascii=False)` writes raw
inside strings.
"""

from __future__ import annotations

import codecs
import json
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import OrchError

FALLBACK_ENCODING = "gb18030"
# Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
CONVERT_FIX = "save it as UTF-8 (e.g. `iconv -f GBK -t UTF-8 FILE > FILE.utf8`), or name its encoding with --encoding"
# A fallback decode is believed only when this share of its characters is ordinary text.
PLAUSIBLE = 0.97


class InputError(OrchError):
    """A file orch reads is unreadable or malformed; `where` is file[:line[:column]]."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        fix: str | None = None,
    ):
        self.path = Path(path)
        self.line = line
        self.column = column
        where = str(path) + (f":{line}" if line else "") + (f":{column}" if line and column else "")
        super().__init__(message, where=where, fix=fix)


@dataclass(frozen=True)
class Decoded:
    """A file's text and how it was decoded (`utf-8`, `utf-8-sig` when a BOM was stripped, `gb18030`, ...)."""

    path: Path
    text: str
    encoding: str

    def lines(self) -> Iterator[tuple[int, str]]:
        """(1-based number, line) for every line, split on `\\n` only."""
        yield from enumerate(self.text.split("\n"), start=1)


@dataclass(frozen=True)
class Line:
    """One parsed JSON line and its 1-based number."""

    number: int
    data: Any


def read_text(path: Path | str, encoding: str | None = None) -> Decoded:
    """The text of an input file (BOM stripped, newlines normalised), or InputError naming the byte at fault."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such file", fix="check the path") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file", fix="name a file inside it") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read: {exc.strerror or exc}", fix="check its permissions") from None
    text, used = decode(path, data, encoding)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    return Decoded(path, text, used)


def decode(path: Path, data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding used) for a file's bytes; see the module docstring for the order tried."""
    for mark, name in BOMS:
        if data.startswith(mark):
            label = "utf-8-sig" if name == "utf-8" else name
            return _strict(path, data if name != "utf-8" else data[len(mark) :], name, label), label
    if encoding:
        try:
            info = codecs.lookup(encoding)
        except LookupError:
            info = None
        if info is None or not getattr(info, "_is_text_encoding", True):
            raise InputError(
                path, f"{encoding!r} is not a text encoding", fix="e.g. utf-8, gb18030, big5, utf-16"
            ) from None
        return _strict(path, data, encoding, encoding.lower()), encoding.lower()
    if b"\x00" in data:
        at = data.index(b"\x00")
        if codec := _utf16_without_bom(data):
            raise InputError(
                path, "UTF-16 text without a byte-order mark", fix=f"pass --encoding {codec}, or save it as UTF-8"
            )
        raise _decode_error(path, data, UnicodeDecodeError("utf-8", data, at, at + 1, "NUL"), "binary")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        first_error = exc
    try:
        text = data.decode(FALLBACK_ENCODING)
    except UnicodeDecodeError:
        text = None
    if text is not None and _plausible(text):
        return text, FALLBACK_ENCODING
    raise _decode_error(path, data, first_error, "not UTF-8, and not GB18030/GBK text either")


def _strict(path: Path, data: bytes, codec: str, label: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, data, exc, f"not valid {label}") from None


def _decode_error(path: Path, data: bytes, exc: UnicodeDecodeError, what: str) -> InputError:
    line = data.count(b"\n", 0, exc.start) + 1
    bad = data[exc.start : exc.start + 4].hex(" ")
    kind = "binary, not text (it has NUL bytes)" if b"\x00" in data else what
    return InputError(path, f"{kind}: byte offset {exc.start} ({bad}) cannot be decoded", line=line, fix=CONVERT_FIX)


def _utf16_without_bom(data: bytes) -> str | None:
    """The UTF-16 byte order a file with NUL bytes reads as ordinary text in, if any."""
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = data[: len(data) // 2 * 2].decode(codec)
        except UnicodeDecodeError:
            continue
        if _plausible(text) and any(mark in text for mark in ("\n", "：", "，", "。", " ")):
            return codec
    return None


def _plausible(text: str) -> bool:
    """Whether a fallback decode reads as text: few control, private-use or unassigned characters."""
    if not text:
        return True
    odd = sum(1 for ch in text if ch not in "\n\r\t" and unicodedata.category(ch) in ("Cc", "Co", "Cn", "Cs"))
    return odd <= (1 - PLAUSIBLE) * len(text)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (write null or a number)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object: only one value can be meant")
        out[key] = value
    return out


def parse_json(text: str, path: Path | str, line: int = 1) -> Any:
    """One JSON document, strictly (no NaN, no repeated keys); InputError at file:line:column."""
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(
            path, f"not valid JSON: {exc.msg}", line=line + exc.lineno - 1, column=exc.colno, fix=_json_fix(exc)
        ) from None
    except ValueError as exc:
        raise InputError(path, f"not valid JSON: {exc}", line=line, fix="fix the value on that line") from None
    except RecursionError:
        raise InputError(
            path, "JSON nested too deeply to read", line=line, fix="no input needs this much nesting"
        ) from None


def _json_fix(exc: json.JSONDecodeError) -> str:
    if "Extra data" in exc.msg:
        return "one JSON value per line (JSONL) or one per file (.json); a line must not hold two"
    if "Unterminated string" in exc.msg or "Invalid control character" in exc.msg:
        return "a string must close on its line; write a line break inside a string as \\n"
    return "fix the JSON at that position (quotes around keys and strings, no trailing commas)"


def read_json(path: Path | str, encoding: str | None = None) -> Any:
    """A whole-file JSON document."""
    decoded = read_text(path, encoding)
    return parse_json(decoded.text, decoded.path)


def iter_jsonl(decoded: Decoded, on_error: Callable[[InputError], None] | None = None) -> Iterator[Line]:
    """The JSON value on each non-blank line; a bad line raises, or goes to `on_error` and is skipped."""
    for number, text in decoded.lines():
        if not text.strip():
            continue
        try:
            yield Line(number, parse_json(text, decoded.path, number))
        except InputError as exc:
            if on_error is None:
                raise
            on_error(exc)


def read_jsonl(path: Path | str, encoding: str | None = None) -> list[Line]:
    """Every line of a JSONL file, parsed; the first bad line raises InputError at file:line:column."""
    return list(iter_jsonl(read_text(path, encoding)))


def records_of(decoded: Decoded) -> list[Line]:
    """The rows of a decoded `.json` file that must be a list of rows."""
    data = parse_json(decoded.text, decoded.path)
    if not isinstance(data, list):
        raise InputError(
            decoded.path,
            f"a .json file of rows must be a list, not a {type(data).__name__}",
            fix="wrap the rows in [ ... ], or write one per line as .jsonl",
        )
    return [Line(i, item) for i, item in enumerate(data, start=1)]


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first on line {seen[key]})", key_node.start_mark
                )
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, path: Path | str) -> Any:
    """A YAML document, strictly (no repeated keys); InputError at file:line:column."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        _acyclic(data, path)
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p) or str(exc)
        line_text = text.split("\n")[mark.line] if mark is not None and mark.line < text.count("\n") + 1 else ""
        fix = (
            "YAML indents with spaces: replace the tab"
            if "\t" in line_text
            else "keep one of the two keys"
            if "appears twice" in message
            else "fix the YAML on that line (quote values holding `: ` or ` #`)"
        )
        raise InputError(
            path,
            f"not valid YAML: {message}",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            fix=fix,
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML: {exc}", fix="fix the YAML") from None
    except RecursionError:
        raise InputError(path, "an anchor refers to itself (`&a [*a]`)", fix="remove the loop") from None


def _acyclic(value: Any, path: Path | str, above: tuple[int, ...] = ()) -> None:
    """A YAML anchor may repeat a value but not contain itself (a loop every later reader would follow)."""
    if isinstance(value, (dict, list)):
        if id(value) in above:
            raise InputError(path, "an anchor refers to itself (`&a [*a]`)", fix="remove the loop")
        for item in value.values() if isinstance(value, dict) else value:
            _acyclic(item, path, (*above, id(value)))


def read_yaml(path: Path | str, encoding: str | None = None) -> Any:
    """A whole-file YAML document (None when empty)."""
    decoded = read_text(path, encoding)
    return parse_yaml(decoded.text, decoded.path)


def read_yaml_mapping(path: Path | str, what: str = "file") -> dict[str, Any]:
    """A YAML file that must hold a mapping (empty: {})."""
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            path,
            f"the {what} must be a YAML mapping of `key: value`, not a {type(data).__name__}",
            fix="write one `key: value` per line",
        )
    return data
