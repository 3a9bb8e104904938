"""Start-up of an integration process: defer modules a plugin loads but does not use.

Imported first by ``integrations.sdk``. In a plugin process (the host sets go-plugin's magic cookie
in its environment) and before grpc is imported, it puts a placeholder in ``sys.modules`` for each
module below. The placeholder loads the real module on the first attribute anyone reads from it, so
an integration that does use one (``asyncio`` for an async client, say) gets it as usual, on first
use instead of at start-up. Measured on the 2-core CI VM: ``asyncio`` is ~45 ms of grpc's import
(``grpc._cython.cygrpc`` imports it and never touches it in a synchronous server), ``grpc.aio``
another ~15 ms (imported at the end of ``grpc/__init__``), and protobuf's pure-Python message
class builder ~20 ms (``descriptor_pool`` imports it; the upb backend only uses it for Python
extensions). Together ~70 of the ~210 ms from spawn to the first answer.

Elsewhere (the agent, tests importing the SDK beside Prefect) nothing is deferred.
"""

from __future__ import annotations

import importlib
import os
import sys
import types

# go-plugin's magic cookie, as in ``pinpoint_agent.protocol.handshake`` (importing that package would
# load protobuf before the placeholders are in; a test keeps the two equal).
MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE = "PLUGIN", "pinpoint-agent-plugin"
DEFERRED = ("asyncio", "grpc.aio", "google.protobuf.internal.python_message")


class _Deferred(types.ModuleType):
    """Stands in for a module until an attribute the placeholder lacks is read (``__path__``,
    ``__file__`` and the like included): then the real module is imported, replaces the placeholder
    in ``sys.modules`` and lends it its namespace, so references taken earlier keep working."""

    def __getattr__(self, name: str) -> object:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, name)


def defer_unused_modules(environ: dict[str, str] | os._Environ[str] = os.environ) -> list[str]:
    """Install the placeholders when this is a plugin process that has not imported grpc or protobuf yet;
    returns the names deferred (none outside a plugin)."""
    if environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE or "grpc" in sys.modules \
            or "google.protobuf" in sys.modules:
        return []
    deferred = [name for name in DEFERRED if name not in sys.modules]
    for name in deferred:
        sys.modules[name] = _Deferred(name)
    return deferred


defer_unused_modules()
