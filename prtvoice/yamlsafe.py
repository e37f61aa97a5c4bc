"""A safe YAML reader that keeps the line and column of every node.

`read_yaml(text, file=...)` turns one YAML document into a small tree of
`YScalar`, `YSeq` and `YMap`, each knowing where it stood (1-based). It is
built for untrusted input:

- libyaml's C parser (when present) reads the events; this module composes
  them itself, iteratively, so deep nesting cannot overflow the stack and
  aliases keep their own position;
- only the plain data tags (str, int, float, bool, null, timestamp, map, seq)
  are accepted: any tag that would build an object is an error;
- aliases are expanded with a node budget, so a "billion laughs" document is
  refused in milliseconds, at the alias that blew the budget;
- duplicate keys are errors (PyYAML would silently keep the last one).

Every problem raises `ScriptError`; no other exception escapes for any input.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from prtvoice.errors import Problem, ScriptError

MAX_NODES = 100_000  # nodes after alias expansion; real scripts have a few thousand
MAX_DEPTH = 64  # nesting of mappings and lists

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp")}
_STR_TAG = _TAG + "str"
_SEQ_TAG = _TAG + "seq"
_MAP_TAG = _TAG + "map"


@dataclass(eq=False)
class YScalar:
    """A scalar: `value` is str, int, float, bool, None or a date; `raw` is its source text."""

    value: object
    raw: str
    tag: str
    line: int
    col: int

    @property
    def kind(self) -> str:
        """What a person would call it: text, number, true/false, empty, date."""
        if self.value is None:
            return "empty"
        if isinstance(self.value, bool):
            return "true/false"
        if isinstance(self.value, (int, float)):
            return "number"
        if isinstance(self.value, (datetime.date, datetime.datetime)):
            return "date"
        return "text"


@dataclass(eq=False)
class YSeq:
    """A list of nodes."""

    items: list[YNode]
    line: int
    col: int
    kind: str = field(default="list", init=False)


@dataclass(eq=False)
class YMap:
    """A mapping as ordered (key, value) pairs; keys are unique."""

    items: list[tuple[YNode, YNode]]
    line: int
    col: int
    kind: str = field(default="mapping", init=False)

    def get(self, key: str) -> YNode | None:
        for k, v in self.items:
            if isinstance(k, YScalar) and k.raw == key:
                return v
        return None


YNode = Union[YScalar, YSeq, YMap]  # noqa: UP007 - a runtime alias, py3.10 safe


@dataclass(eq=False)
class _Alias:
    target: object
    line: int
    col: int


def _place(mark) -> tuple[int, int]:
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


def _construct_scalar(loader, tag: str, value: str, line: int, col: int, file: Path):
    """The Python value of a scalar with a resolved data tag."""
    if tag == _STR_TAG:
        return value
    import yaml

    node = yaml.ScalarNode(tag, value)
    try:
        if tag == _TAG + "timestamp":
            return loader.construct_yaml_timestamp(node)
        if tag == _TAG + "int":
            return loader.construct_yaml_int(node)
        if tag == _TAG + "float":
            return loader.construct_yaml_float(node)
        if tag == _TAG + "bool":
            return loader.construct_yaml_bool(node)
        return None  # null
    except Exception:
        # e.g. an integer with more digits than Python converts, 2024-02-31, !!int abc;
        # an explicit tag skips the resolver, so `!!int ''` (IndexError) and
        # `!!timestamp x` (AttributeError) reach constructors that assume a match.
        if tag == _TAG + "timestamp":
            return value  # a date-looking text that is no date: keep it as text
        kind = tag[len(_TAG) :] if tag.startswith(_TAG) else tag
        raise ScriptError.at(file, line, col, f"{value[:40]!r} is not a valid {kind}") from None


def read_yaml(
    text: str, *, file: Path, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH
) -> YNode | None:
    """Compose one YAML document into a located tree; None for an empty document.

    Raises ScriptError (one or more problems, in file order) for syntax errors,
    disallowed tags, duplicate keys, several documents, nesting deeper than
    `max_depth`, or more than `max_nodes` nodes once aliases are expanded.
    """
    root, nodes, aliases = _compose(text, file=file, max_depth=max_depth)
    if root is None:
        return None
    if not aliases and nodes <= max_nodes:
        # Without aliases the composed graph is already the tree `_expand` would
        # copy (a third of a long script's reading time), within every limit.
        return root
    return _expand(root, file=file, max_nodes=max_nodes, max_depth=max_depth)


def _compose(text: str, *, file: Path, max_depth: int):
    # PyYAML is imported only here: the node classes above serve processes that
    # never read YAML (play's player process unpickles scripts; ~25 ms saved).
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    problems: list[Problem] = []
    anchors: dict[str, object] = {}
    # Open collections: [node, anchor, pending key or _NOKEY, seen keys]
    stack: list[list] = []
    root = None
    documents = 0
    nodes = 0  # scalars, lists and mappings made
    aliases = 0
    nokey = object()

    def add(item, line: int, col: int) -> None:
        nonlocal root
        if not stack:
            root = item
            return
        top = stack[-1]
        node = top[0]
        if isinstance(node, YSeq):
            node.items.append(item)
        elif top[2] is nokey:
            top[2] = item
        else:
            key = top[2]
            top[2] = nokey
            ident = _key_identity(key)
            if ident is not None and ident in top[3]:
                problems.append(
                    Problem(
                        file,
                        key.line,
                        key.col,
                        f"duplicate key {key.raw!r}",
                        "each key may appear once in a mapping",
                    )
                )
            elif ident is not None:
                top[3].add(ident)
            node.items.append((key, item))

    scalar_event = yaml.ScalarEvent
    try:
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                break
            mark = event.start_mark
            line, col = (1, 1) if mark is None else (mark.line + 1, mark.column + 1)
            if type(event) is scalar_event:  # most events: first, and without a call
                tag = event.tag
                if tag is None or tag == "!":
                    tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                    if event.tag == "!":
                        tag = _STR_TAG
                if tag not in _SCALAR_TAGS:
                    problems.append(_tag_problem(file, line, col, tag))
                    tag = _STR_TAG
                value = (event.value if tag == _STR_TAG
                         else _construct_scalar(loader, tag, event.value, line, col, file))  # fmt: skip
                node = YScalar(value, event.value, tag, line, col)
                nodes += 1
                if event.anchor is not None:
                    anchors[event.anchor] = node
                add(node, line, col)
                continue
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise ScriptError.at(
                        file,
                        line,
                        col,
                        "a script is one YAML document; found a second one",
                        "remove the extra `---`",
                    )
                continue
            if isinstance(event, (yaml.StreamStartEvent, yaml.DocumentEndEvent)):
                continue
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    raise ScriptError.at(
                        file,
                        line,
                        col,
                        f"unknown alias *{event.anchor}",
                        "define the anchor (&name) before using it",
                    )
                aliases += 1
                add(_Alias(anchors[event.anchor], line, col), line, col)
                continue
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                node, anchor, _, _ = stack.pop()
                if anchor is not None:
                    anchors[anchor] = node
                add(node, node.line, node.col)
                continue
            tag = event.tag
            # A collection starts.
            if len(stack) >= max_depth:
                raise ScriptError.at(
                    file, line, col, f"the YAML is nested more than {max_depth} levels deep"
                )
            is_seq = isinstance(event, yaml.SequenceStartEvent)
            want = _SEQ_TAG if is_seq else _MAP_TAG
            if tag is not None and tag != "!" and tag != want:
                problems.append(_tag_problem(file, line, col, tag))
            node = YSeq([], line, col) if is_seq else YMap([], line, col)
            nodes += 1
            stack.append([node, event.anchor, nokey, set()])
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _place(mark)
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = (
                f"{exc.context}: {exc.problem}"
                if "while" not in exc.context
                else (f"{exc.problem} ({exc.context})")
            )
        problem = Problem(file, line, col, f"YAML syntax error: {message}")
        raise ScriptError([*problems, problem]) from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        problem = Problem(
            file,
            line,
            col,
            f"the file holds a character YAML does not allow "
            f"(#x{exc.character if isinstance(exc.character, int) else ord(exc.character):04x})",
        )
        raise ScriptError([*problems, problem]) from None
    except yaml.YAMLError as exc:  # anything else libyaml reports without a mark
        raise ScriptError([*problems, Problem(file, 1, 1, f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    if problems:
        raise ScriptError(sorted(problems, key=lambda p: (p.line, p.col)))
    return root, nodes, aliases


def _key_identity(key) -> tuple | None:
    if isinstance(key, YScalar):
        value = key.value
        if isinstance(value, float) and value != value:  # NaN never equals itself
            return ("nan", key.raw)
        try:
            hash(value)
        except TypeError:
            return (key.tag, key.raw)
        return (key.tag, value)
    return None  # a list or mapping as a key: the loader reports it


def _tag_problem(file: Path, line: int, col: int, tag: str) -> Problem:
    shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    return Problem(
        file,
        line,
        col,
        f"the YAML tag {shown} is not allowed",
        "scripts hold plain text, numbers, lists and mappings only",
    )


def _expand(root, *, file: Path, max_nodes: int, max_depth: int) -> YNode:
    """Copy the composed graph with aliases expanded, refusing to grow past `max_nodes`."""
    visits = 0
    budget_hit: list[_Alias | None] = [None]

    def over(alias: _Alias | None, line: int, col: int) -> ScriptError:
        place = alias or budget_hit[0]
        if place is not None:
            line, col = place.line, place.col
        return ScriptError.at(
            file,
            line,
            col,
            f"the YAML expands to more than {max_nodes} values (aliases repeating aliases?)",
            "write the content out instead of nesting aliases",
        )

    # Iterative deep copy: (source node, via alias, depth, sink list or None)
    result: list = []
    work: list[tuple[object, _Alias | None, int, object]] = [(root, None, 0, result)]
    while work:
        node, via, depth, sink = work.pop()
        if isinstance(node, _Alias):
            via = via or node  # report the outermost alias: where the expansion starts
            if depth > max_depth:
                raise ScriptError.at(
                    file,
                    node.line,
                    node.col,
                    f"the YAML is nested more than {max_depth} levels deep",
                )
            work.append((node.target, via, depth, sink))
            continue
        visits += 1
        if visits > max_nodes:
            raise over(via, node.line, node.col)
        if depth > max_depth:
            raise ScriptError.at(
                file, node.line, node.col, f"the YAML is nested more than {max_depth} levels deep"
            )
        if isinstance(node, YScalar):
            copy = node
        elif isinstance(node, YSeq):
            copy = YSeq([None] * len(node.items), node.line, node.col)
            for index in range(len(node.items) - 1, -1, -1):
                work.append((node.items[index], via, depth + 1, (copy.items, index)))
        else:
            copy = YMap([None] * len(node.items), node.line, node.col)  # type: ignore[list-item]
            for index in range(len(node.items) - 1, -1, -1):
                key, value = node.items[index]
                pair = [None, None]
                copy.items[index] = pair  # type: ignore[call-overload]
                work.append((value, via, depth + 1, (pair, 1)))
                work.append((key, via, depth + 1, (pair, 0)))
        if isinstance(sink, list):
            sink.append(copy)
        else:
            target, index = sink  # type: ignore[misc]
            target[index] = copy
    _freeze_pairs(result[0])
    return result[0]


def _freeze_pairs(root: YNode) -> None:
    """Turn the [key, value] lists the copy used into tuples."""
    work = [root]
    while work:
        node = work.pop()
        if isinstance(node, YMap):
            node.items = [tuple(pair) for pair in node.items]  # type: ignore[misc]
            for key, value in node.items:
                work.append(key)
                work.append(value)
        elif isinstance(node, YSeq):
            work.extend(node.items)
