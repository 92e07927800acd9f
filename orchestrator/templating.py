"""The Jinja environment: strict, deterministic, with errors that name file:line."""

from __future__ import annotations

import shlex
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta

from orchestrator import inputs
from orchestrator.errors import OrchError


class _InputLoader(jinja2.FileSystemLoader):
    """Templates read through `orchestrator.inputs`: a BOM or a GBK file is read, or named in a clear error."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        pieces = jinja2.loaders.split_template_path(template)
        for folder in self.searchpath:
            path = Path(folder, *pieces)
            if path.is_file():
                mtime = path.stat().st_mtime_ns
                return (
                    inputs.read_text(path).text,
                    str(path),
                    lambda path=path, mtime=mtime: path.is_file() and path.stat().st_mtime_ns == mtime,
                )
        raise jinja2.TemplateNotFound(template)


def make_env(templates_dir: Path) -> jinja2.Environment:
    """A Jinja environment over `templates_dir` where a missing variable is an error."""
    env = jinja2.Environment(
        loader=_InputLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["yaml"] = _to_yaml_scalar
    return env


@cache
def shell_env(templates_dir: Path) -> jinja2.Environment:
    """A Jinja environment for shell scripts: every `{{ value }}` is shell-quoted by the engine.

    Quoting by construction: a template cannot forget it. A value with a line break or
    another control character is refused outright (it could end a comment or a directive).
    """
    env = make_env(templates_dir)
    env.finalize = shell_value
    return env


def shell_value(value: Any) -> str:
    """`value` as one shell word (quoted when it needs to be); control characters are refused."""
    text = str(value)
    bad = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise OrchError(
            f"{text!r} cannot go into a job script: it holds the control character {bad!r}",
            fix="give the value without line breaks or control characters",
        )
    return shlex.quote(text)


def _to_yaml_scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
    return text.removesuffix("\n...\n").strip()


def _template_location(templates_dir: Path) -> str | None:
    """file:line of the innermost template frame of the exception being handled."""
    tb = sys.exc_info()[2]
    where = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or filename.endswith(".yaml"):
            where = f"{_short(filename, templates_dir)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _short(filename: str, templates_dir: Path) -> str:
    try:
        return str(Path("templates") / Path(filename).resolve().relative_to(templates_dir.resolve()))
    except ValueError:
        return filename


def render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render template `name`; any template error becomes an OrchError naming file:line."""
    templates_dir = Path(env.loader.searchpath[0])  # type: ignore[union-attr]
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise OrchError(
            f"template {exc.name!r} not found (needed while rendering {name})",
            where=f"templates/{name}",
            fix=f"create templates/{exc.name} or fix the name in {{% extends %}} / {{% include %}}",
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise OrchError(
            f"template syntax error: {exc.message}",
            where=f"{_short(exc.filename or name, templates_dir)}:{exc.lineno}",
        ) from None
    except jinja2.UndefinedError as exc:
        raise OrchError(
            f"{exc.message}",
            where=_template_location(templates_dir) or f"templates/{name}",
            fix="define the variable, or use `| default(...)` where it is optional",
        ) from None


def referenced_templates(env: jinja2.Environment, name: str) -> list[str]:
    """Templates that `name` extends or includes, as written in its source."""
    source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
    return [ref for ref in meta.find_referenced_templates(env.parse(source)) if ref]


def load_yaml_documents(text: str, where: str) -> list[dict[str, Any]]:
    """Parse rendered multi-document YAML; each document must be a mapping (or empty)."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (rendered line {mark.line + 1})" if mark else ""
        raise OrchError(f"rendered text is not valid YAML{line}: {exc}", where=where) from None
    out = []
    for doc in documents:
        if doc is None:
            out.append({})
            continue
        if not isinstance(doc, dict):
            raise OrchError("every YAML document must be a mapping of keys", where=where)
        out.append(doc)
    return out
