"""Validation (placeholder)."""

from __future__ import annotations

from google.protobuf.message import Message


def validate(msg: Message) -> list[str]:
    return []


def validate_update(old: Message, new: Message) -> list[str]:
    return []


def validate_status(msg: Message) -> list[str]:
    return []
