"""Read and change one scalar in a YAML file without disturbing a byte of the rest.

A promotion changes exactly one value (the stage's image tag) in a hand-written file full of
comments. Dumping a round-trip-loaded document again normalises indentation, line width and
some quoting, so instead ruamel.yaml's round-trip loader is used to *find* the scalar (its
line and column), the scalar's token is replaced in the original text, and the result is
loaded again and compared with the original document: the edit is accepted only if the one
key holds the new value and every other key and value is unchanged. Comments, key order,
quoting and indentation therefore survive byte for byte outside the edited token.

Only an existing scalar may change: a missing key, a mapping or sequence, an empty value,
a block scalar, an anchored/aliased/tagged node or a multi-line scalar is refused.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipectl.errors import BadInput, ConfigError

Key = str | int

# YAML line breaks as ruamel's reader counts them (a lone CR, LF, CRLF, NEL, LS, PS).
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_NULL_TOKENS = {"~", "null", "Null", "NULL"}


def split_key(dotted: str) -> list[str]:
    """`global.image.tag` -> ["global", "image", "tag"]."""
    parts = dotted.split(".")
    if not dotted or any(not p for p in parts):
        raise ConfigError(f"bad key path {dotted!r}: expected dotted names like global.image.tag")
    return parts


def _rt_load(text: str, origin: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    try:
        docs = list(yaml.load_all(io.StringIO(text)))
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{origin}: not valid YAML: {first}") from None
    if len(docs) != 1:
        raise ConfigError(f"{origin}: expected exactly one YAML document, found {len(docs)}")
    return docs[0]


def _plain(node: Any) -> Any:
    """A round-trip node as plain Python data (for comparing two loads)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _walk(doc: Any, path: Sequence[Key], origin: str) -> tuple[Any, Key]:
    """The container holding the last key of `path`, and that key."""
    if not path:
        raise ConfigError(f"{origin}: empty key path")
    node = doc
    for depth, key in enumerate(path):
        shown = _show(path[: depth + 1])
        if isinstance(key, int):
            if not isinstance(node, list) or not -len(node) <= key < len(node):
                raise ConfigError(f"{origin}: no item {shown}")
        elif not isinstance(node, dict) or key not in node:
            raise ConfigError(f"{origin}: key {shown} does not exist")
        if depth == len(path) - 1:
            return node, key
        node = node[key]
    raise AssertionError("unreachable")


def _show(path: Sequence[Key]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def get_value(text: str, path: Sequence[Key], origin: str = "<yaml>") -> Any:
    """The plain value at `path` (raises ConfigError when a key is missing)."""
    container, key = _walk(_rt_load(text, origin), path, origin)
    return _plain(container[key])


def read_tag(path: Path, tag_key: str) -> str:
    """The image tag in a values file; "" means nothing is deployed to the stage yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: values file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return tag_from_text(text, tag_key, str(path))


def tag_from_text(text: str, tag_key: str, origin: str) -> str:
    value = get_value(text, split_key(tag_key), origin)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(
            f"{origin}: {tag_key} must be a string (quote it), found {type(value).__name__}"
        )
    return value


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in _LINE_BREAK.finditer(text))
    return starts


def _token_end(text: str, start: int, flow: bool) -> int:
    """End offset (exclusive) of the scalar token beginning at `start` on its line."""
    line_end = _LINE_BREAK.search(text, start)
    stop = line_end.start() if line_end else len(text)
    first = text[start] if start < len(text) else ""
    if first == "'":
        i = start + 1
        while i < stop:
            if text[i] == "'":
                if i + 1 < stop and text[i + 1] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        raise BadInput("single-quoted scalar continues on the next line; refusing to edit it")
    if first == '"':
        i = start + 1
        while i < stop:
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                return i + 1
            i += 1
        raise BadInput("double-quoted scalar continues on the next line; refusing to edit it")
    i = start
    while i < stop:
        ch = text[i]
        if ch == "#" and i > start and text[i - 1] in " \t":
            break
        if flow and ch in ",]}":
            break
        if flow and ch == ":" and (i + 1 >= stop or text[i + 1] in " \t,]}"):
            break
        i += 1
    return len(text[start:i].rstrip(" \t")) + start


def _in_flow(doc: Any, path: Sequence[Key]) -> bool:
    node = doc
    for key in path[:-1]:
        fa = getattr(node, "fa", None)
        if fa is not None and fa.flow_style():
            return True
        node = node[key]
    fa = getattr(node, "fa", None)
    return bool(fa is not None and fa.flow_style())


def _render_scalar(value: str | bool, quote: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if quote == "'":
        return "'" + value.replace("'", "''") + "'"
    if quote == '"' or not _plain_ok(value):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return value


def _plain_ok(value: str) -> bool:
    """True when `value` written unquoted loads back as the same string."""
    if not value or value != value.strip() or any(c in value for c in "\n\r\t#:'\"{}[],&*!|>%@`"):
        return False
    if value[0] in "-?" or value.startswith(("<<",)):
        return False
    # Helm's YAML parser follows YAML 1.1 in places (0b101, 0777, yes/no): the plain
    # spelling must load as the same string under both 1.1 and 1.2 rules.
    for header in ("%YAML 1.1\n---\n", ""):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ruamel warns about 1.1 floats like 1e10
                if get_value(f"{header}k: {value}\n", ["k"]) != value:
                    return False
        except ConfigError:
            return False
    return True


def set_scalar_text(text: str, path: Sequence[Key], value: str | bool, origin: str) -> str:
    """`text` with the scalar at `path` replaced by `value`; everything else byte-identical.

    Strings keep the original quoting style (plain stays plain when it loads back as the
    same string, otherwise it becomes double-quoted); booleans are written `true`/`false`.
    """
    doc = _rt_load(text, origin)
    container, key = _walk(doc, path, origin)
    shown = _show(path)
    current = container[key]
    if isinstance(current, dict | list):
        raise BadInput(f"{origin}: {shown} is not a scalar; only an existing scalar may change")
    if isinstance(value, str) and any(c in value for c in "\n\r"):
        raise BadInput(f"{origin}: new value for {shown} must be one line")
    if getattr(current, "anchor", None) is not None and current.anchor.value is not None:
        raise BadInput(f"{origin}: {shown} carries an anchor; refusing to edit it")

    try:
        line, col = container.lc.value(key) if isinstance(key, str) else container.lc.item(key)
    except (AttributeError, KeyError, TypeError):
        raise BadInput(f"{origin}: cannot locate {shown} in the text (merged key?)") from None
    starts = _line_starts(text)
    if line >= len(starts):
        raise BadInput(f'{origin}: {shown} has no value to replace (write an explicit "")')
    start = starts[line] + col
    first = text[start : start + 1]
    if first in ("", "\n", "\r", "#"):
        raise BadInput(f'{origin}: {shown} has no value to replace (write an explicit "")')
    if first in "|>":
        raise BadInput(f"{origin}: {shown} is a block scalar; refusing to edit it")
    if first in "&*!":
        raise BadInput(f"{origin}: {shown} is anchored, aliased or tagged; refusing to edit it")
    end = _token_end(text, start, _in_flow(doc, path))
    token = text[start:end]
    quote = first if first in "'\"" else ""
    if current is None and token not in _NULL_TOKENS:
        raise BadInput(f'{origin}: {shown} has no value to replace (write an explicit "")')
    new_text = text[:start] + _render_scalar(value, quote) + text[end:]

    # Accept the splice only if it changed exactly the one value.
    expected = _plain(doc)
    target = expected
    for k in path[:-1]:
        target = target[k]
    target[path[-1] if isinstance(path[-1], int) else str(path[-1])] = value
    try:
        reloaded = _plain(_rt_load(new_text, origin))
    except ConfigError as exc:
        raise BadInput(f"{origin}: editing {shown} would break the file ({exc})") from None
    if reloaded != expected:
        raise BadInput(
            f"{origin}: cannot edit {shown} in place (the scalar spans more than one token)"
        )
    return new_text


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` (same mode), never leaving a half-written file."""
    data = text.encode("utf-8")
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_text_exact(path: Path) -> str:
    """File contents with line endings untouched (CRLF stays CRLF)."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def set_tag(path: Path, tag_key: str, tag: str) -> tuple[str, str]:
    """Write `tag` at `tag_key` in the values file; returns (old text, new text)."""
    old = read_text_exact(path)
    new = set_scalar_text(old, split_key(tag_key), tag, str(path))
    if new != old:
        write_atomic(path, new)
    return old, new
