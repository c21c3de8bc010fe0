"""The CloudFormation template the embedded emulator provisions from: loading it (short
tags included) and resolving the intrinsic functions the emulator needs."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

TEMPLATE_PATH_ENV: Final = "AUTHSVC_TEMPLATE_PATH"


class TemplateError(ValueError):
    """The template cannot be read or provisioned; the message says what and where."""


# --------------------------------------------------------------------------- loading

_SHORT_TAGS: Final = (
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Not",
    "Select",
    "Split",
    "Sub",
    "And",
    "Or",
)


# A SafeLoader that turns CloudFormation short tags into their long JSON form. Built with
# type() so the module type-checks with and without PyYAML's stubs.
_TemplateLoader: Any = type("_TemplateLoader", (yaml.SafeLoader,), {})


def _construct_any(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")  # pragma: no cover


def _long_form(key: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _construct_any(loader, node)}

    return construct


def _construct_get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct_any(loader, node)
    if isinstance(value, str):
        # `!GetAtt Resource.Attribute` (the attribute itself may contain dots)
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {"Fn::GetAtt": value}


_TemplateLoader.add_constructor("!Ref", _long_form("Ref"))
_TemplateLoader.add_constructor("!Condition", _long_form("Condition"))
_TemplateLoader.add_constructor("!GetAtt", _construct_get_att)
for _name in _SHORT_TAGS:
    _TemplateLoader.add_constructor(f"!{_name}", _long_form(f"Fn::{_name}"))


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation YAML (or JSON) template, short tags included."""
    try:
        with path.open(encoding="utf-8") as stream:
            template = yaml.load(stream, Loader=_TemplateLoader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not a valid template: {exc}") from exc
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources mapping)")
    return template


def default_template_path() -> Path:
    """The template to provision from: $AUTHSVC_TEMPLATE_PATH, the source tree, or ./infra."""
    explicit = os.environ.get(TEMPLATE_PATH_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise TemplateError(f"{TEMPLATE_PATH_ENV}={explicit}: no such file")
        return path
    candidates = (
        # src/authsvc/dev/emulator.py -> repository root (source checkout, editable install)
        Path(__file__).resolve().parents[3] / "infra" / "template.yaml",
        Path.cwd() / "infra" / "template.yaml",
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise TemplateError(
        f"infra/template.yaml not found (looked at {searched}); "
        f"set {TEMPLATE_PATH_ENV} to the template's path"
    )


# --------------------------------------------------------------------------- resolving

_NO_VALUE: Final = object()
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}!][^}]*)\}")


class _Resolver:
    """Evaluates the intrinsic functions this emulator needs, in the template's context."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, Any],
    ) -> None:
        self._template = template
        self._parameters = parameters
        self._pseudo = pseudo
        # logical id -> Ref value, (logical id, attribute) -> Fn::GetAtt value
        self.refs: dict[str, Any] = {}
        self.attributes: dict[tuple[str, str], Any] = {}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definitions = self._template.get("Conditions") or {}
            if name not in definitions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(definitions[name], f"Conditions/{name}"))
        return self._conditions[name]

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            items = (self.resolve(item, f"{where}/{i}") for i, item in enumerate(value))
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            # {"Condition": name} is the intrinsic; an IAM-style Condition block is a mapping
            named = key in ("Ref", "Condition") and isinstance(argument, str)
            if named or key.startswith("Fn::"):
                return self._intrinsic(key, argument, where)
        resolved = {k: self.resolve(v, f"{where}/{k}") for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str, where: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        for scope in (self._parameters, self._pseudo, self.refs):
            if name in scope:
                return scope[name]
        raise TemplateError(f"{where}: cannot resolve Ref {name!r} in the emulator")

    def _intrinsic(self, key: str, argument: Any, where: str) -> Any:
        here = f"{where}/{key}"
        match key:
            case "Ref":
                return self._ref(str(argument), here)
            case "Condition":
                return self.condition(str(argument))
            case "Fn::Sub":
                return self._sub(argument, here)
            case "Fn::GetAtt":
                names = argument.split(".", 1) if isinstance(argument, str) else argument
                resource, attribute = (self.resolve(n, here) for n in names)
                if (resource, attribute) not in self.attributes:
                    raise TemplateError(f"{here}: cannot resolve {resource}.{attribute}")
                return self.attributes[(resource, attribute)]
            case "Fn::If":
                name, if_true, if_false = argument
                chosen = if_true if self.condition(name) else if_false
                return self.resolve(chosen, here)
            case "Fn::Equals":
                left, right = self.resolve(argument, here)
                return str(left) == str(right)
            case "Fn::Not":
                (operand,) = self.resolve(argument, here)
                return not operand
            case "Fn::And":
                return all(self.resolve(argument, here))
            case "Fn::Or":
                return any(self.resolve(argument, here))
            case "Fn::Join":
                delimiter, items = self.resolve(argument, here)
                return str(delimiter).join(str(item) for item in items)
            case "Fn::Split":
                delimiter, source = self.resolve(argument, here)
                return str(source).split(str(delimiter))
            case "Fn::Select":
                index, items = self.resolve(argument, here)
                return items[int(index)]
            case "Fn::FindInMap":
                mapping, top, second = self.resolve(argument, here)
                try:
                    return self._template["Mappings"][mapping][top][second]
                except (KeyError, TypeError):
                    raise TemplateError(
                        f"{here}: no {mapping}/{top}/{second} in Mappings"
                    ) from None
        raise TemplateError(f"{here}: {key} is not supported by the emulator")

    def _sub(self, argument: Any, where: str) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        else:
            text, raw_variables = argument
            variables = self.resolve(raw_variables, where)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                resource, attribute = name.split(".", 1)
                if (resource, attribute) in self.attributes:
                    return str(self.attributes[(resource, attribute)])
                raise TemplateError(f"{where}: cannot resolve ${{{name}}}")
            return str(self._ref(name, where))

        # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`
        return _SUB_VARIABLE.sub(replace, str(text)).replace("${!", "${")


def _parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"unknown template parameter(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            raw: Any = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise TemplateError(f"template parameter {name} has no Default: pass a value for it")
        allowed = spec.get("AllowedValues")
        if allowed is not None and str(raw) not in {str(v) for v in allowed}:
            raise TemplateError(f"template parameter {name}={raw!r} is not one of {allowed}")
        kind = str(spec.get("Type", "String"))
        if kind == "Number":
            text = str(raw)
            values[name] = int(text) if re.fullmatch(r"-?\d+", text) else float(text)
        elif kind == "CommaDelimitedList" or kind.startswith("List<"):
            values[name] = [] if raw in ("", None) else str(raw).split(",")
        else:
            values[name] = str(raw)
    return values
