"""A behaving fake GitLab (API v4 under ``/api/v4``) on ``127.0.0.1:0``.

- Auth: ``PRIVATE-TOKEN`` with the admin's or a plain user's token, or ``Authorization: Bearer`` with a valid
  OAuth token (``oauth_tokens``; an expired one answers 401); anything else 401 ``{"message": "401
  Unauthorized"}``. ``/user`` has ``is_admin`` only for the admin; ``/users`` leaves out emails and
  ``/users/:id/emails`` answers 403 for a plain user.
- Pagination: offset (``page``/``per_page``; ``X-Page``, ``X-Per-Page``, ``X-Next-Page``, ``X-Prev-Page``,
  ``X-Total``, ``X-Total-Pages`` — totals left out above 10,000 items — and ``Link``); keyset for ``/projects``
  and ``/users`` with ``pagination=keyset&order_by=id`` (``Link rel="next"`` with ``id_after``, no totals;
  other orders 405).
- Rate limits: ``RateLimit-Limit``/``-Observed``/``-Remaining``/``-Reset``/``-ResetTime`` on every answer, the
  quota counted down per request, and 429 with ``Retry-After`` once it is used up.
- Failures on demand: ``fail(match, status, times, skip, headers)`` for 5xx, 429, 404…; ``latency`` seconds
  before each answer (benchmarks).

Every request is recorded in ``requests`` (method, path, query, status, auth kind).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import orjson

from tests.gitlab.fake_data import FakeData, FakeProject, iso

ADMIN_TOKEN = "glpat-ADMINfake0123456789SECRET"
USER_TOKEN = "glpat-USERfake9876543210SECRET"
OAUTH_TOKEN = "oauth-FAKEaccess-token-SECRET"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    status: int
    auth: str

    @property
    def target(self) -> str:
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path


@dataclass
class Failure:
    """Answer ``status`` (with ``headers``) to the next ``times`` requests whose target contains ``match``,
    after letting ``skip`` of them through."""

    match: str
    status: int
    times: int = 1
    skip: int = 0
    headers: dict[str, str] = field(default_factory=dict)


class FakeGitLab:
    def __init__(
        self,
        *,
        limit: int = 2000,
        window: float = 60.0,
        latency: float = 0.0,
        data: Callable[[str], FakeData] = FakeData,
    ) -> None:
        self.tokens = {ADMIN_TOKEN: 1, USER_TOKEN: 2}  # token -> user id
        self.oauth_tokens = {OAUTH_TOKEN: 2}
        self.limit, self.window, self.latency = limit, window, latency
        self.remaining = limit
        self.reset_at = int(time.time() + window)
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.data = data(self.url)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-gitlab", daemon=True
        )

    def __enter__(self) -> FakeGitLab:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- controls ----------------------------------------------------------------------------------------
    def fail(
        self, match: str, status: int, *, times: int = 1, skip: int = 0, headers: dict[str, str] | None = None
    ) -> None:
        with self.lock:
            self.failures.append(Failure(match, status, times, skip, headers or {}))

    def rate_limit(self, match: str, *, wait: int = 1, skip: int = 0) -> None:
        """The next request matching ``match`` answers 429 with ``Retry-After: wait``."""
        self.fail(match, 429, skip=skip, headers={"Retry-After": str(wait)})

    def count(self, contains: str = "", method: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if contains in r.target and (method is None or r.method == method))

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- routing -----------------------------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if self.latency:
            time.sleep(self.latency)
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        uid, kind = self._who(headers)
        if uid is None:
            status, hdrs, payload = self._json(401, {"message": "401 Unauthorized"})
        else:
            status, hdrs, payload = self._limited(method, path, query, body, uid)
        with self.lock:
            self.requests.append(Recorded(method, path, query, status, kind))
        return status, hdrs, payload

    def _who(self, headers: dict[str, str]) -> tuple[int | None, str]:
        private = headers.get("private-token")
        if private is not None:
            return self.tokens.get(private), "private-token"
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return self.oauth_tokens.get(auth[7:]), "bearer"
        return None, "none"

    def _limited(
        self, method: str, path: str, query: dict[str, str], body: bytes, uid: int
    ) -> tuple[int, dict[str, str], bytes]:
        target = f"{path}?{urlencode(query)}" if query else path
        with self.lock:
            now = time.time()
            if now >= self.reset_at:
                self.remaining, self.reset_at = self.limit, int(now + self.window)
            if self.remaining <= 0:
                return self._json(
                    429, {"message": "Retry later"}, {"Retry-After": str(max(int(self.reset_at - now), 1))}
                )
            for f in self.failures:
                if f.match in target and f.times > 0:
                    if f.skip > 0:
                        f.skip -= 1
                        continue
                    f.times -= 1
                    text = {429: "Retry later", 404: "404 Not Found"}.get(f.status, "Internal Server Error")
                    return self._json(f.status, {"message": text}, f.headers)
        if not path.startswith("/api/v4/"):
            return self._json(404, {"error": "404 Not Found"})
        status, data, extra = self._route(method, path[len("/api/v4") :], query, body, uid)
        return self._json(status, data, extra)

    def _route(
        self, method: str, path: str, query: dict[str, str], body: bytes, uid: int
    ) -> tuple[int, Any, dict[str, str]]:
        d = self.data
        admin = d.by_id[uid].admin
        none: dict[str, str] = {}
        if path == "/version":
            return 200, {"version": "16.11.2-ee", "revision": "ab12cd34"}, none
        if path == "/user":
            me = d.admin_user(d.by_id[uid]) if admin else {**d.short_user(uid), "email": d.by_id[uid].email}
            if not admin:
                me.pop("is_admin", None)
            return 200, me, none
        if path == "/personal_access_tokens/self":
            return 200, {"id": 7, "name": "pinpoint", "scopes": ["read_api", "read_repository"], "active": True}, none
        if path == "/users":
            if query.get("pagination") == "keyset":
                return self._keyset(path, d.users, query, lambda u: d.admin_user(u) if admin else d.short_user(u.id))
            items = [d.admin_user(u) if admin else d.short_user(u.id) for u in d.users]
            return self._offset(items, query)
        m = re.match(r"^/users/(\d+)/emails$", path)
        if m:
            if not admin:
                return 403, {"message": "403 Forbidden"}, none
            u = d.by_id.get(int(m.group(1)))
            if u is None:
                return 404, {"message": "404 User Not Found"}, none
            emails = [{"id": 300 + k, "email": e, "confirmed_at": iso(d.clock)} for k, e in enumerate(u.secondary)]
            return self._offset(emails, query)
        if path == "/projects":
            visible = [p for p in d.projects.values() if self._filters(p, query)]
            if query.get("pagination") == "keyset":
                return self._keyset(path, visible, query, d.project)
            return self._offset([d.project(p) for p in visible], query)
        m = re.match(r"^/groups/([^/]+)(/projects|/members/all)?$", path)
        if m:
            group = unquote(m.group(1))
            gpath = next((g for g, gid in d.groups.items() if group in (g, str(gid))), None)
            if gpath is None:
                return 404, {"message": "404 Group Not Found"}, none
            if m.group(2) is None:
                return 200, {"id": d.groups[gpath], "full_path": gpath, "name": gpath.rsplit("/", 1)[-1]}, none
            if m.group(2) == "/members/all":
                return self._offset([{**d.short_user(u.id), "access_level": 30} for u in d.users[:3]], query)
            sub = query.get("include_subgroups") == "true"
            items = [
                d.project(p)
                for p in sorted(d.projects.values(), key=lambda p: p.id)
                if (p.namespace == gpath or (sub and p.namespace.startswith(gpath + "/"))) and self._filters(p, query)
            ]
            return self._offset(items, query)
        m = re.match(r"^/projects/([^/]+)(?:/(.*))?$", path)
        if not m:
            return 404, {"error": "404 Not Found"}, none
        key = unquote(m.group(1))
        p = next((p for p in d.projects.values() if key in (str(p.id), p.path)), None)
        if p is None:
            return 404, {"message": "404 Project Not Found"}, none
        return self._project(method, p, m.group(2) or "", query, body)

    @staticmethod
    def _filters(p: FakeProject, query: dict[str, str]) -> bool:
        if query.get("archived") == "false" and p.archived:
            return False
        return not (query.get("archived") == "true" and not p.archived)

    def _project(
        self, method: str, p: FakeProject, sub: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        d = self.data
        none: dict[str, str] = {}
        if sub == "":
            return 200, d.project(p), none
        if sub == "members/all":
            return self._offset([{**d.short_user(u.id), "access_level": 30} for u in d.users[:2]], query)
        if sub.startswith("merge_requests") and not p.merge_requests_enabled:
            return 403, {"message": "403 Forbidden"}, none
        if sub in ("merge_requests", "issues"):
            items = p.mrs if sub == "merge_requests" else p.issues
            after = query.get("updated_after", "")
            chosen = [i for i in items if not after or i["updated_at"] >= after]
            key = "updated_at" if query.get("order_by") == "updated_at" else "created_at"
            chosen.sort(key=lambda i: (i[key], i["id"]), reverse=query.get("sort", "desc") == "desc")
            return self._offset(chosen, query)
        m = re.match(r"^(merge_requests|issues)/(\d+)(?:/(commits|approvals|reviewers|notes)(?:/(\d+))?)?$", sub)
        if not m:
            return 404, {"error": "404 Not Found"}, none
        is_mr, iid, what, note_id = m.group(1) == "merge_requests", int(m.group(2)), m.group(3), m.group(4)
        obj = next((o for o in (p.mrs if is_mr else p.issues) if o["iid"] == iid), None)
        if obj is None:
            return 404, {"message": f"404 {'Merge Request' if is_mr else 'Issue'} Not Found"}, none
        notes = (p.notes if is_mr else p.issue_notes)[iid]
        if what == "commits" and is_mr:
            return self._offset(p.commits[iid], query)
        if what == "reviewers" and is_mr:
            return 200, p.reviewers[iid], none
        if what == "approvals" and is_mr:
            return 200, d.approvals(p, obj), none
        if what == "notes" and note_id:
            note = next((n for n in notes if n["id"] == int(note_id)), None)
            return (200, note, none) if note else (404, {"message": "404 Note Not Found"}, none)
        if what == "notes" and method == "POST":
            note = (d.add_issue_note if not is_mr else d.add_mr_note)(p.id, iid, 2, orjson.loads(body)["body"])
            return 201, note, none
        if what == "notes":
            ordered = sorted(
                notes,
                key=lambda n: (n[query.get("order_by", "created_at")], n["id"]),
                reverse=query.get("sort", "desc") == "desc",
            )
            return self._offset(ordered, query)
        if what:
            return 404, {"error": "404 Not Found"}, none
        if method == "PUT":
            change = orjson.loads(body or b"{}")
            fields = {k: v for k, v in change.items() if k in ("title", "description")}
            if "state_event" in change:
                fields["state"] = "closed" if change["state_event"] == "close" else "opened"
            obj = (d.touch_mr if is_mr else d.touch_issue)(p.id, iid, **fields)
        return 200, d.mr_full(obj) if is_mr else obj, none

    # -- pages -------------------------------------------------------------------------------------------
    def _offset(self, items: list[Any], query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        per_page = min(max(int(query.get("per_page", 20)), 1), 100)
        page = max(int(query.get("page", 1)), 1)
        total = len(items)
        pages = max((total + per_page - 1) // per_page, 1)
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        if total <= 10_000:  # GitLab leaves the totals out of large lists
            headers.update({"X-Total": str(total), "X-Total-Pages": str(pages)})
        return 200, items[(page - 1) * per_page : page * per_page], headers

    def _keyset(
        self, path: str, objs: list[Any], query: dict[str, str], shape: Callable[[Any], dict[str, Any]]
    ) -> tuple[int, Any, dict[str, str]]:
        if query.get("order_by") != "id":
            return 405, {"message": "405 Method Not Allowed: keyset pagination needs order_by=id"}, {}
        per_page = min(max(int(query.get("per_page", 20)), 1), 100)
        after = int(query.get("id_after", 0))
        ordered = sorted((o for o in objs if o.id > after), key=lambda o: o.id)
        chunk = ordered[:per_page]
        headers: dict[str, str] = {}
        if len(ordered) > per_page:
            nxt = {k: v for k, v in query.items() if k != "id_after"} | {"id_after": str(chunk[-1].id)}
            headers["Link"] = f'<{self.url}/api/v4{path}?{urlencode(nxt)}>; rel="next"'
        return 200, [shape(o) for o in chunk], headers

    def _json(self, status: int, data: Any, extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            if status != 429:
                self.remaining = max(self.remaining - 1, 0)
            hdrs = {
                "Content-Type": "application/json",
                "RateLimit-Limit": str(self.limit),
                "RateLimit-Observed": str(self.limit - self.remaining),
                "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset_at),
                "RateLimit-ResetTime": formatdate(self.reset_at, usegmt=True),
                **(extra or {}),
            }
        return status, hdrs, orjson.dumps(data)


def _handler(fake: FakeGitLab) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16

        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, extra, payload = fake.handle(self.command, self.path, headers, body)
            except Exception as exc:  # noqa: BLE001 (a bug in the fake shows up as a 500 the test sees)
                status, extra, payload = 500, {}, orjson.dumps({"message": f"fake bug: {exc!r}"})
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _do  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler
