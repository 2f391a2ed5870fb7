"""Form decoding and parameter checking for the fake Stripe API.

Stripe's v1 API takes `application/x-www-form-urlencoded` bodies with bracketed keys
(`line_items[0][price_data][currency]=usd`). `parse_form` turns them back into nested dicts
and lists, keeping every leaf value as the string that was sent.

`check_params` rejects unknown and missing parameters, and malformed integers and booleans,
the way the real API does. Its schema is the installed stripe package's own `*Params`
TypedDicts (generated from Stripe's OpenAPI spec), so it follows the pinned client version.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from stripe._request_options import RequestOptions


class FakeAPIError(Exception):
    """A Stripe-shaped API error; `body()` is the JSON the real API answers with."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        code: str | None = None,
        status: int = 400,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status, self.type = (
            message,
            param,
            code,
            status,
            type,
        )

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.param is not None:
            err["param"] = self.param
        if self.code is not None:
            err["code"] = self.code
        return {"error": err}


_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def parse_form(raw: str) -> dict[str, Any]:
    """`a[b][0][c]=1&expand[]=x` -> {"a": {"b": [{"c": "1"}]}, "expand": ["x"]}."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY.match(key)
        if not match:
            raise FakeAPIError(f"Invalid parameter name: {key}", key)
        parts = [match.group(1), *_SEGMENT.findall(match.group(2))]
        append = parts[-1] == ""
        if append:
            parts.pop()
        if "" in parts:
            raise FakeAPIError(f"Invalid parameter name: {key}", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise FakeAPIError(f"Invalid hash: {key}", key)
        leaf = parts[-1]
        if append:
            items = node.setdefault(leaf, [])
            if isinstance(items, dict):  # mixed `x[0]=a&x[]=b`
                items[str(len(items))] = value
            else:
                items.append(value)
        elif isinstance(node.get(leaf), dict | list):
            kind = "array" if isinstance(node[leaf], list) else "hash"
            raise FakeAPIError(f"Invalid {kind}: {key} was also sent as a scalar", key)
        else:
            node[leaf] = value
    parsed: dict[str, Any] = _listify(root, None)
    return parsed


def _listify(value: Any, key: str | None) -> Any:
    """Dicts whose keys are all indices become lists (`x[0]=a&x[1]=b`), except metadata."""
    if isinstance(value, list):
        return [_listify(v, None) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _listify(v, k) for k, v in value.items()}
    if key != "metadata" and out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def as_form(params: Any) -> Any:
    """What `params` look like after the real client encoded them and `parse_form` decoded
    them: ints as strings, booleans as "true"/"false", None dropped."""
    if isinstance(params, dict):
        return {k: as_form(v) for k, v in params.items() if v is not None}
    if isinstance(params, list | tuple):
        return [as_form(v) for v in params]
    if isinstance(params, bool):
        return str(params).lower()
    return str(params)


# ---------------------------------------------------------------- schema from TypedDicts

_OPTION_KEYS = frozenset(RequestOptions.__annotations__)
_FORWARD_REF = re.compile(r"""ForwardRef\((['"])(.*?)\1\)""")
_PARAMS_CLASS = re.compile(r"\b([A-Z]\w*Params\w*)\b")


@dataclass(frozen=True)
class _Spec:
    sub: type | None  # nested TypedDict
    is_list: bool
    is_map: bool  # free-form Dict[str, str] (metadata)
    scalars: frozenset[str]  # of "int", "bool", "str", "Decimal"
    empty_ok: bool  # Literal[''] lets "" unset the field


@functools.cache
def _fields(cls: type) -> dict[str, _Spec]:
    module = sys.modules[cls.__module__]
    fields = {}
    for name, ann in cls.__annotations__.items():
        if name in _OPTION_KEYS:
            continue
        text = _FORWARD_REF.sub(r"\2", ann if isinstance(ann, str) else repr(ann))
        sub = None
        for cand in _PARAMS_CLASS.findall(text):
            found = getattr(module, cand, None)
            if isinstance(found, type) and hasattr(found, "__required_keys__"):
                sub = found
                break
        bare = re.sub(r"Literal\[[^\]]*\]", "Literal", text)
        fields[name] = _Spec(
            sub=sub,
            is_list="List[" in text,
            is_map="Dict[" in text or "UntypedStripeObject" in text,
            scalars=frozenset(re.findall(r"\b(int|bool|str|Decimal)\b", bare.split("Dict[")[0])),
            empty_ok="Literal['']" in text,
        )
    return fields


def check_params(params: dict[str, Any], cls: type) -> None:
    """Raise FakeAPIError for what the real API would refuse in `params` given `cls`."""
    _check_dict(params, cls, "")


def _check_dict(value: dict[str, Any], cls: type, prefix: str) -> None:
    fields = _fields(cls)
    for key, item in value.items():
        path = f"{prefix}[{key}]" if prefix else key
        if key not in fields:
            raise FakeAPIError(f"Received unknown parameter: {path}", path)
        _check_value(item, fields[key], path)
    for key in sorted(cls.__required_keys__ - _OPTION_KEYS):  # type: ignore[attr-defined]  # a TypedDict class, typed as type
        if key not in value:
            path = f"{prefix}[{key}]" if prefix else key
            raise FakeAPIError(f"Missing required param: {path}.", path)


def _check_value(value: Any, spec: _Spec, path: str, in_list: bool = False) -> None:
    if value == "" and (spec.empty_ok or "str" in spec.scalars):
        return
    if spec.is_list and not in_list:
        if not isinstance(value, list):
            raise FakeAPIError(f"Invalid array: {path}", path)
        for i, item in enumerate(value):
            _check_value(item, spec, f"{path}[{i}]", in_list=True)
    elif isinstance(value, dict):
        if spec.sub is not None:
            _check_dict(value, spec.sub, path)
        elif spec.is_map:
            _check_metadata(value, path)
        else:
            raise FakeAPIError(f"Invalid {_scalar_name(spec)}: {path} must not be a hash", path)
    elif isinstance(value, list):
        raise FakeAPIError(f"Invalid {_scalar_name(spec)}: {path} must not be an array", path)
    elif not spec.scalars:
        raise FakeAPIError(f"Invalid hash: {path}", path)
    elif "str" not in spec.scalars:
        ok = {
            "int": re.fullmatch(r"-?\d+", value),
            "bool": value in ("true", "false"),
            "Decimal": re.fullmatch(r"-?\d+(\.\d+)?", value),
        }
        if not any(ok.get(s) for s in spec.scalars):
            raise FakeAPIError(f"Invalid {_scalar_name(spec)}: {value}", path)


def _scalar_name(spec: _Spec) -> str:
    for token, name in (("int", "integer"), ("bool", "boolean"), ("Decimal", "decimal")):
        if token in spec.scalars:
            return name
    return "string"


def _check_metadata(value: dict[str, Any], path: str) -> None:
    if len(value) > 50:
        raise FakeAPIError(f"Invalid {path}: at most 50 keys are allowed", path)
    for key, item in value.items():
        if not isinstance(item, str):
            raise FakeAPIError(f"Invalid value for {path}[{key}]: must be a string", path)
        if len(key) > 40:
            raise FakeAPIError(f"Metadata keys must be at most 40 characters: {key}", path)
        if len(item) > 500:
            raise FakeAPIError(f"Metadata values must be at most 500 characters: {key}", path)
