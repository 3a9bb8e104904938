"""A batch of sessions under one parent object: a main session (say the pull requests of one page walk) and the
child sessions of the other models it meets (commits, reviews, comments), opened only when first used. Done
or rolled back together."""

from __future__ import annotations

from integrations.sdk._agent import Session
from pinpoint_agent.errors import PinpointError


class SessionBatch:
    def __init__(self, parent: Session, object_id: str, object_name: str, main: Session) -> None:
        self.parent, self.object_id, self.object_name, self.main = parent, object_id, object_name, main
        self._children: dict[str, Session] = {}

    def next(self) -> SessionBatch:
        """A new batch for the same object, its main session a new child of ``parent`` for the main's model (the
        batch after a checkpoint: this one done, the walk goes on)."""
        return SessionBatch(self.parent, self.object_id, self.object_name,
                            self.parent.child(self.main.name, self.object_id, self.object_name))

    def session(self, model: str) -> Session:
        """The batch's session of ``model``, a child of ``parent`` for the batch's object."""
        if model not in self._children:
            self._children[model] = self.parent.child(model, self.object_id, self.object_name)
        return self._children[model]

    def done(self, token: str) -> None:
        """The children done, then the main session with ``token``."""
        for s in self._children.values():
            s.done()
        self.main.done(token)

    def rollback(self) -> None:
        for s in [*self._children.values(), self.main]:
            try:
                s.rollback()
            except PinpointError:
                pass  # the error that made us roll back is the one to report
