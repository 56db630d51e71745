"""Answer a template's questions without prompting, as ``copier copy --defaults --data`` does.

For each question in file order (Copier 9.19, ``Worker._ask`` and ``Question``): its
``when`` is rendered; a given answer is cast to the question's type, checked against its
choices and validated (also when ``when`` is false); otherwise the default is rendered
(it may use earlier answers), cast, checked and validated (only when ``when`` is true).
Questions whose ``when`` is false are answered but hidden from the answers file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import yaml
from jinja2 import StrictUndefined
from jinja2.exceptions import UndefinedError

from ..errors import RenderError
from .jinja import Compiler

#: Value types Copier keeps in the answers file.
JSON_SERIALIZABLE = (dict, list, str, int, float, bool, type(None))


class Missing:
    """The absence of a default (Copier's ``MISSING``)."""


MISSING = Missing()


class UnsetError(UndefinedError):
    """Raised when a default renders ``UNSET``: the question then has no default."""


def cast_to_bool(value: Any) -> bool:
    """Copier's bool parsing: numbers, YAML booleans and nulls, then ``bool()``."""
    try:
        return bool(float(value))
    except (TypeError, ValueError):
        pass
    if isinstance(value, str):
        lower = value.strip().lower()
        if not lower:
            return False
        if lower in {"y", "yes", "t", "true", "on"}:
            return True
        if lower in {"n", "no", "f", "false", "off", "~", "null", "none"}:
            return False
    return bool(value)


def cast_to_str(value: Any) -> str:
    """Copier's str parsing: strings, numbers and bytes only."""
    if isinstance(value, str):
        return str(value.value) if isinstance(value, Enum) else value
    decimal = sys.modules.get("decimal")  # a Decimal exists only once decimal is imported
    if isinstance(value, float | int) or (decimal and isinstance(value, decimal.Decimal)):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return value.decode()
    raise ValueError(f"Could not convert {value} to string")


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


CASTS: Mapping[str, Callable[[Any], Any]] = {
    "bool": cast_to_bool,
    "float": float,
    "int": int,
    "json": json.loads,
    "str": cast_to_str,
    "yaml": _parse_yaml,
    "path": str,
}


@dataclass
class Answers:
    """Answers by source, as Copier's ``AnswersMap`` (no ``last``/``user_defaults`` here)."""

    init: dict[str, Any]
    metadata: dict[str, Any]
    user: dict[str, Any] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)

    def combined(self) -> dict[str, Any]:
        """Every answer, the resolved ones first (``ChainMap`` order and priority)."""
        combined: dict[str, Any] = {"_external_data": {}}
        for source in (self.metadata, self.init, self.user):
            combined.update(dict.fromkeys(source))  # keys in ChainMap order
        for source in (self.metadata, self.init, self.user):
            combined.update(source)  # values by priority: user, init, metadata
        return combined

    def to_remember(
        self,
        questions: Mapping[str, Any],
        secret: frozenset[str],
        combined: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Return the answers file's content: metadata first, then visible answers."""
        remembered: dict[str, Any] = {
            key: self.metadata[key] for key in ("_commit", "_src_path") if key in self.metadata
        }
        for key, value in (self.combined() if combined is None else combined).items():
            if (
                not key.startswith("_")
                and key not in self.hidden
                and key not in secret
                and key in questions
                and isinstance(value, JSON_SERIALIZABLE)
            ):
                remembered[key] = value
        return remembered


class Question:
    """One question of the template, answered from the given data or its default."""

    def __init__(
        self,
        name: str,
        spec: Mapping[str, Any],
        compiler: Compiler,
        context: Mapping[str, Any],
        answers: Answers,
    ) -> None:
        self.name = name
        self.compiler = compiler
        self.context = context
        self.answers = answers
        self.default: Any = spec.get("default", MISSING)
        self.type: Any = spec.get("type", "")
        if self.type == "":
            inferred = type(self.default).__name__
            self.type = inferred if inferred in CASTS else "yaml"
        self.choices: Any = spec.get("choices", [])
        self.validator: Any = spec.get("validator", "")
        self.when: Any = spec.get("when", True)
        self.secret = bool(spec.get("secret", False))
        self.multiselect = bool(spec.get("multiselect", False))
        self._choices: list[tuple[Any, str]] | None = None

    def render_value(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        """Render a string as a template; render lists item by item; keep anything else."""
        if isinstance(value, list):
            return [self.render_value(item) for item in value]
        if not isinstance(value, str):
            return value
        context = {**self.context, **(extra or {})}
        where = f"question {self.name!r}"
        try:
            return self.compiler.template(value, where).render(context)
        except UnsetError:
            raise
        except UndefinedError as exc:
            raise RenderError(f"{where}: {exc}") from None

    def type_name(self) -> str:
        """Render the question's type; it must be one of Copier's types."""
        name = self.render_value(self.type)
        if name not in CASTS:
            raise ValueError(f'Unsupported type "{name}" in question "{self.name}"')
        return str(name)

    def cast(self, answer: Any) -> Any:
        """Cast ``answer`` to the question's type (Copier's ``cast_answer``)."""
        type_name = self.type_name()
        if answer is None and type_name not in {"json", "yaml"}:
            raise ValueError(
                f'Invalid answer "{answer}" of type "{type(answer)}" '
                f'to question "{self.name}" of type "{type_name}"'
            )
        try:
            if self.multiselect and isinstance(answer, list):
                return [CASTS[type_name](item) for item in answer]
            return CASTS[type_name](answer)
        except (TypeError, AttributeError):
            if type_name in {"json", "yaml"}:
                return answer
            raise ValueError(
                f'Invalid answer {answer!r} to question "{self.name}" of type "{type_name}"'
            ) from None

    def formatted_choices(self) -> list[tuple[Any, str]]:
        """Return the choices as (value, disabled message) pairs, rendered and cast-checked."""
        if self._choices is not None:
            return self._choices
        choices = self.choices
        if isinstance(choices, str):
            choices = _parse_yaml(self.render_value(choices))
        if isinstance(choices, dict):
            choices = list(choices.items())
        result: list[tuple[Any, str]] = []
        for choice in choices:
            value = choice[1] if isinstance(choice, tuple | list) else choice
            disabled = ""
            if isinstance(choice, tuple | list) and isinstance(value, dict):
                if "value" not in value:
                    raise RenderError(f"question {self.name!r}: a choice needs a 'value'")
                validator = value.get("validator", "")
                if not isinstance(validator, str):
                    raise RenderError(f"question {self.name!r}: a choice validator is a string")
                disabled = self.render_value(validator)
                value = value["value"]
            value = self.render_value(value)
            self.cast(value)
            result.append((value, disabled))
        self._choices = result
        return result

    def parse(self, answer: Any) -> Any:
        """Cast ``answer`` and check it is an enabled choice (Copier's ``parse_answer``).

        A multiselect answer is a list (or a YAML list in a string, as a templated default
        renders): each item is checked; the chosen ones come back in choice order.
        """
        if not self.multiselect:
            return self._parse_one(answer)
        if isinstance(answer, str):
            answer = _parse_yaml(answer)
        if not isinstance(answer, list):
            raise ValueError(f"Invalid answer {answer!r} to multiselect question '{self.name}'")
        chosen = [self._parse_one(item) for item in answer]
        ordered = (self.cast(value) for value, _ in self.formatted_choices())
        return [value for value in ordered if value in chosen]

    def _parse_one(self, answer: Any) -> Any:
        parsed = self.cast(answer)
        choices = self.formatted_choices()
        if not choices:
            return parsed
        error = ""
        valid = []
        for value, disabled in choices:
            cast_value = self.cast(value)
            if not disabled:
                valid.append(cast_value)
            if parsed == cast_value:
                if not disabled:
                    return parsed
                error = error or disabled
        detail = error or f"{parsed!r} is not in {valid}"
        raise ValueError(f"Invalid choice for '{self.name}': {detail}")

    def validate(self, answer: Any) -> None:
        """Render the validator with the answer; any output is the error message."""
        try:
            message = str(self.render_value(self.validator, {self.name: answer})).strip()
        except Exception as exc:  # Copier reports any failure as the message
            message = str(exc)
        if message:
            raise ValueError(f"Validation error for question '{self.name}': {message}")

    def is_asked(self) -> bool:
        """Render ``when``: whether the question is asked (and recorded)."""
        return cast_to_bool(self.render_value(self.when))

    def get_default(self) -> Any:
        """Return the given answer, else the rendered default; cast, checked, validated."""
        if self.name in self.answers.init:
            result = self.answers.init[self.name]
        else:
            try:
                result = self.render_value(
                    self.default, {"UNSET": StrictUndefined("UNSET", exc=UnsetError)}
                )
            except UnsetError:
                return MISSING
            if result is MISSING:
                return MISSING
        result = self.parse(result)
        if self.is_asked() and not self.secret:
            self.validate(result)
        return result


def answer_questions(
    questions: Mapping[str, Mapping[str, Any]],
    compiler: Compiler,
    answers: Answers,
    context: Callable[[], dict[str, Any]],
) -> None:
    """Fill ``answers.user`` (and ``hidden``) from the given answers and the defaults."""
    for name, spec in questions.items():
        question = Question(name, spec, compiler, context(), answers)
        try:
            if not question.is_asked():
                answers.hidden.add(name)
                if question.get_default() is MISSING:
                    continue
            if name in answers.init:
                answer = question.parse(answers.init[name])
                question.validate(answer)
            else:
                answer = question.get_default()
                if answer is MISSING:
                    raise ValueError(f'Question "{name}" is required')
        except ValueError as exc:
            raise RenderError(f"template rejected the answers: {exc}") from None
        answers.user[name] = answer
