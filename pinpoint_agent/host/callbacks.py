"""What the agent does when an integration calls back, and the gRPC servicer that routes calls to it.

``Callbacks`` is plain Python (the session manager implements it); ``AgentServicer`` is the protocol
boundary: it converts messages and maps errors to gRPC status codes in one place, so a failing callback
is an error for the integration, never a crash of the agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import quote

import grpc
import structlog

from pinpoint_agent.backend import BackendCredentials, BackendError, BackendRejected, make_client
from pinpoint_agent.backend._http import DEFAULT_RETRY, RetryPolicy, send, with_retries
from pinpoint_agent.errors import ConfigError, NotSupportedError, PinpointError, RetriableError, SessionError
from pinpoint_agent.protocol import GitRepoRequest
from pinpoint_agent.protocol._gen import pinpoint_pb2 as pb
from pinpoint_agent.protocol._gen import pinpoint_pb2_grpc

T = TypeVar("T")
log = structlog.get_logger(__name__)


def oauth_ref_type(integration_name: str) -> str:
    """The name the backend keeps OAuth grants under: ``jira-cloud``/``jira-hosted`` are ``jira``."""
    for suffix in ("-cloud", "-hosted"):
        if integration_name.endswith(suffix):
            return integration_name[: -len(suffix)]
    return integration_name


class BackendOAuth:
    """``OAuthNewAccessToken`` for one integration entry, backed by the backend's refresh endpoint (the original
    agent's): ``GET {backend_url}/oauth/{ref_type}/refresh/{refresh token}`` with the agent's api key, answering
    ``{"access_token": …}``. Each call asks for a fresh token (the integration caches it and asks again after a
    401). The refresh token stays agent-side; since that url holds it, no error or log line shows the url."""

    def __init__(self, backend: BackendCredentials, ref_type: str, refresh_token: str, *,
                 retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self._backend = backend
        self.ref_type = ref_type
        self._refresh_token = refresh_token
        self._retry = retry

    def __repr__(self) -> str:
        return f"BackendOAuth({self.ref_type!r})"

    def access_token(self) -> str:
        url = (f"{self._backend.backend_url.rstrip('/')}/oauth/{quote(self.ref_type, safe='')}/refresh/"
               f"{quote(self._refresh_token, safe='')}")
        what = f"the backend's OAuth refresh for {self.ref_type}"
        try:
            with make_client(self._backend) as client:
                response = with_retries(self._retry, lambda: send(client, "GET", url))
            token = response.json().get("access_token") if response.content else None
        except BackendRejected as exc:  # `from None`: the chained error would carry the url
            raise ConfigError(f"{what} was refused (HTTP {exc.status}): connect the integration again") from None
        except BackendError as exc:
            raise RetriableError(f"{what} failed ({type(exc).__name__})", retry_after=60.0) from None
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise ConfigError(f"{what} answered no access_token: the refresh token may be bad")
        return token


class Callbacks:
    """Agent-side behaviour of the callbacks. The defaults refuse politely (not supported)."""

    oauth: BackendOAuth | None = None  # set for an entry with a refresh token when a backend is configured

    def session_start(self, is_tracking: bool, name: str, parent_id: int, parent_object_id: str,
                      parent_object_name: str) -> tuple[int, str]:
        raise NotSupportedError("sessions are not available for this command")

    def session_progress(self, session_id: int, current: int, total: int) -> None:
        raise NotSupportedError("sessions are not available for this command")

    def session_done(self, session_id: int, last_processed: str) -> None:
        raise NotSupportedError("sessions are not available for this command")

    def session_rollback(self, session_id: int) -> None:
        raise NotSupportedError("sessions are not available for this command")

    def send_exported(self, session_id: int, objects: Sequence[bytes], dedup: bytes = b"") -> None:
        """``dedup``: optional packed (key, hash) int64 pairs, one per object (see ``ids.object_key``)."""
        raise NotSupportedError("sending objects is not available for this command")

    def export_git_repo(self, request: GitRepoRequest) -> None:
        raise NotSupportedError("git processing is not available for this command")

    def oauth_access_token(self) -> str:
        if self.oauth is None:
            raise NotSupportedError("this integration is not configured for OAuth (it needs a refresh_token and "
                                    "a backend: enroll, or backend_url and api_key in the agent config)")
        return self.oauth.access_token()

    def oauth_access_token_from_refresh_token(self, name: str, refresh_token: str) -> str:
        raise NotSupportedError("OAuth refresh is not available")

    def pause(self, message: str, resume_date: str) -> None:
        log.warning("integration paused", message=message, resume_date=resume_date)

    def resume(self, message: str) -> None:
        log.info("integration resumed", message=message)

    def webhook_url(self) -> str:
        raise NotSupportedError("no webhook url is configured")


_STATUS: list[tuple[type[PinpointError], grpc.StatusCode]] = [
    (SessionError, grpc.StatusCode.FAILED_PRECONDITION),
    (ConfigError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotSupportedError, grpc.StatusCode.UNIMPLEMENTED),
]


class AgentServicer(pinpoint_pb2_grpc.AgentServicer):
    """gRPC face of ``Callbacks``; records the time of the last call (the host's hang detector reads it)."""

    def __init__(self, callbacks: Callbacks, integration: str) -> None:
        self.callbacks = callbacks
        self.integration = integration
        self.last_activity = time.monotonic()

    def _do(self, context: grpc.ServicerContext, what: str, fn: Callable[[], T]) -> T:
        self.last_activity = time.monotonic()
        try:
            return fn()
        except PinpointError as exc:
            code = next((c for cls, c in _STATUS if isinstance(exc, cls)), grpc.StatusCode.INTERNAL)
            context.abort(code, str(exc))
        except Exception as exc:  # noqa: BLE001 (a bug on our side must not take the agent down)
            log.error("callback failed", integration=self.integration, callback=what, exc_info=True)
            context.abort(grpc.StatusCode.INTERNAL, f"{what}: {type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")  # context.abort raises

    def SessionStart(self, r: pb.SessionStartRequest, c: grpc.ServicerContext) -> pb.SessionStartResponse:  # noqa: N802
        sid, token = self._do(c, "SessionStart", lambda: self.callbacks.session_start(
            r.is_tracking, r.name, r.parent_session_id, r.parent_object_id, r.parent_object_name))
        return pb.SessionStartResponse(session_id=sid, last_processed=token)

    def SessionProgress(self, r: pb.SessionProgressRequest, c: grpc.ServicerContext) -> pb.Empty:  # noqa: N802
        self._do(c, "SessionProgress", lambda: self.callbacks.session_progress(r.session_id, r.current, r.total))
        return pb.Empty()

    def SessionDone(self, r: pb.SessionDoneRequest, c: grpc.ServicerContext) -> pb.Empty:  # noqa: N802
        self._do(c, "SessionDone", lambda: self.callbacks.session_done(r.session_id, r.last_processed))
        return pb.Empty()

    def SessionRollback(self, r: pb.SessionRollbackRequest, c: grpc.ServicerContext) -> pb.Empty:  # noqa: N802
        self._do(c, "SessionRollback", lambda: self.callbacks.session_rollback(r.session_id))
        return pb.Empty()

    def SendExported(self, r: pb.SendExportedRequest, c: grpc.ServicerContext) -> pb.Empty:  # noqa: N802
        self._do(c, "SendExported", lambda: self.callbacks.send_exported(r.session_id, r.objects, r.dedup))
        return pb.Empty()

    def ExportGitRepo(self, r: pb.ExportGitRepoRequest, c: grpc.ServicerContext) -> pb.Empty:  # noqa: N802
        self._do(c, "ExportGitRepo", lambda: self.callbacks.export_git_repo(GitRepoRequest.from_proto(r)))
        return pb.Empty()

    def OAuthNewAccessToken(self, r: pb.Empty, c: grpc.ServicerContext) -> pb.OAuthTokenResponse:  # noqa: N802
        return pb.OAuthTokenResponse(token=self._do(c, "OAuthNewAccessToken", self.callbacks.oauth_access_token))

    def OAuthNewAccessTokenFromRefreshToken(  # noqa: N802
        self, r: pb.OAuthRefreshRequest, c: grpc.ServicerContext
    ) -> pb.OAuthTokenResponse:
        token = self._do(c, "OAuthNewAccessTokenFromRefreshToken",
                         lambda: self.callbacks.oauth_access_token_from_refresh_token(r.name, r.refresh_token))
        return pb.OAuthTokenResponse(token=token)

    def SendPauseEvent(self, r: pb.PauseEventRequest, c: grpc.ServicerContext) -> pb.Empty:  # noqa: N802
        self._do(c, "SendPauseEvent", lambda: self.callbacks.pause(r.message, r.resume_date))
        return pb.Empty()

    def SendResumeEvent(self, r: pb.ResumeEventRequest, c: grpc.ServicerContext) -> pb.Empty:  # noqa: N802
        self._do(c, "SendResumeEvent", lambda: self.callbacks.resume(r.message))
        return pb.Empty()

    def GetWebhookURL(self, r: pb.Empty, c: grpc.ServicerContext) -> pb.WebhookURLResponse:  # noqa: N802
        return pb.WebhookURLResponse(url=self._do(c, "GetWebhookURL", self.callbacks.webhook_url))


