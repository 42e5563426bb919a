"""Errors the services raise; views turn them into messages, the CLI into exit codes."""
from __future__ import annotations


class ServiceError(Exception):
    """A refused action, with a message meant for the person who asked."""


class PermissionDenied(ServiceError):
    pass


class FirmSuspended(ServiceError):
    pass


class StaleItem(ServiceError):
    """The item changed since the form was opened (optimistic lock)."""


class NothingToPublish(ServiceError):
    pass


class InvalidInput(ServiceError):
    def __init__(self, message, errors=None):
        super().__init__(str(message))
        self.errors = errors or []
