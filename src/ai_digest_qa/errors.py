"""The configuration error, and the one wording of "that name is not known", shared by
the configuration (config.py) and the backend registry (backends.py) without either
importing the other's code."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message says which and how to fix it."""


def use_one_of(choices: tuple[str, ...]) -> str:
    """"'a' or 'b'", or "one of a, b, c": what a message asks for."""
    if len(choices) == 2:
        return f"{choices[0]!r} or {choices[1]!r}"
    return "one of " + ", ".join(choices)


def unknown_choice(setting: str, value: object, choices: tuple[str, ...]) -> ConfigError:
    """The error for ``setting=value`` when only ``choices`` are accepted."""
    return ConfigError(f"{setting}={value!r} is not known; use {use_one_of(choices)}.")
