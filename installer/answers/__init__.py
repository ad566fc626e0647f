"""Answer files: the TOML schema, validation with line numbers, and resolution to a Plan."""

from installer.answers.model import Answers, json_schema
from installer.answers.resolve import resolve
from installer.answers.validate import Problem, load_answers, parse_answers, validate_data

__all__ = [
    "Answers",
    "Problem",
    "json_schema",
    "load_answers",
    "parse_answers",
    "resolve",
    "validate_data",
]
