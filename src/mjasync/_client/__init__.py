"""The client facade (:class:`Client`) and its parts: configuration, wire calls, buttons."""

from .client import Client
from .statistics import ClientStatistics, ModeStatistics

__all__ = ["Client", "ClientStatistics", "ModeStatistics"]
