"""A behaving fake GitHub Enterprise on ``127.0.0.1:0``: REST v3 under ``/api/v3``, GraphQL at
``/api/graphql``.

It paginates with ``Link`` headers (``per_page``/``page``), enforces ``Authorization: token|Bearer <t>``,
sends ``X-RateLimit-*`` headers and counts the quota down, answers conditional requests (``ETag`` /
``If-None-Match`` -> 304, not counted), and fails on demand: ``fail(...)`` queues rate limits (403 with
remaining 0 and a reset, 403 secondary with ``Retry-After``, 429), 5xx or 404 for matching requests.
Every request is recorded in ``requests`` (method, path, query, status). ``latency`` delays every answer by that
many seconds (benchmarks: an upstream that makes its clients wait, requests answered side by side).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from tests.github.fake_data import ORG, USERS, FakeData, now_iso

TOKEN = "ghp_FAKEtoken0123456789abcdefSECRET"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    status: int

    @property
    def target(self) -> str:
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path


@dataclass
class Failure:
    """Answer ``status`` (with ``headers``/``message``) to the next ``times`` requests whose target contains
    ``match``, after letting ``skip`` of them through."""

    match: str
    status: int
    times: int = 1
    skip: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""


class FakeGitHub:
    def __init__(
        self,
        token: str = TOKEN,
        *,
        limit: int = 5000,
        window: float = 3600.0,
        scopes: str = "read:org, repo",
        latency: float = 0.0,
    ) -> None:
        self.token = token
        self.latency = latency
        self.limit = limit
        self.remaining = limit
        self.window = window  # seconds until the quota is full again
        self.reset_at = int(time.time() + window)
        self.exceeded = 0  # requests that came in with no quota left (a client that does not wait)
        self.scopes = scopes
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.gone: set[str] = set()  # repos that answer 404 (deleted mid-export)
        self.node_ids = True  # False: REST payloads without ``node_id``, as older Enterprise servers answer
        self.unresolvable: set[str] = set()  # node ids GraphQL cannot resolve (no access, or gone)
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.data = FakeData(self.url)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-github", daemon=True
        )

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- controls ----------------------------------------------------------------------------------------
    def fail(
        self,
        match: str,
        status: int,
        *,
        times: int = 1,
        skip: int = 0,
        headers: dict[str, str] | None = None,
        message: str = "",
    ) -> None:
        with self.lock:
            self.failures.append(Failure(match, status, times, skip, headers or {}, message))

    def rate_limit(self, match: str, kind: str = "primary", *, skip: int = 0, wait: int = 1) -> None:
        """``primary``: 403, remaining 0, reset in ``wait`` s; ``secondary``: 403 + Retry-After; ``429``."""
        if kind == "primary":
            self.fail(
                match,
                403,
                skip=skip,
                message="API rate limit exceeded for user ID 1001.",
                headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + wait)},
            )
        elif kind == "secondary":
            self.fail(
                match,
                403,
                skip=skip,
                headers={"Retry-After": str(wait)},
                message="You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                "again.",
            )
        else:
            self.fail(match, 429, skip=skip, headers={"Retry-After": str(wait)}, message="Too Many Requests")

    def count(self, contains: str = "", method: str | None = None) -> int:
        with self.lock:
            return sum(
                1 for r in self.requests if contains in r.target and (method is None or r.method == method)
            )

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- routing -----------------------------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if self.latency:
            time.sleep(self.latency)  # in the request's own thread: concurrent requests wait side by side
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        status, extra, payload = self._route(method, path, query, headers, body)
        with self.lock:
            self.requests.append(Recorded(method, path, query, status))
        return status, extra, payload

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        auth = headers.get("authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return self._json(
                401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
            )
        target = f"{path}?{urlencode(query)}" if query else path
        with self.lock:
            if time.time() >= self.reset_at:
                self.remaining, self.reset_at = self.limit, int(time.time() + self.window)
            if self.remaining == 0:  # the quota is used up: GitHub's primary rate limit answer
                self.exceeded += 1
                self.failures.insert(
                    0,
                    Failure(
                        "",
                        403,
                        message="API rate limit exceeded for user ID 1001.",
                        headers={"X-RateLimit-Remaining": "0"},
                    ),
                )
            for f in self.failures:
                if f.match in target and f.times > 0:
                    if f.skip > 0:
                        f.skip -= 1
                        continue
                    f.times -= 1
                    msg = f.message or {404: "Not Found", 500: "Server Error", 502: "Bad Gateway"}.get(
                        f.status, ""
                    )
                    status, hdrs, data = self._json(
                        f.status, {"message": msg, "documentation_url": "https://docs"}
                    )
                    return status, {**hdrs, **f.headers}, data
        if path == "/api/graphql" and method == "POST":
            return self._graphql(orjson.loads(body or b"{}"))
        if not path.startswith("/api/v3/"):
            return self._json(404, {"message": "Not Found"})
        rest = path[len("/api/v3") :]
        m = re.match(r"^/repos/([^/]+)/([^/]+)(/.*)?$", rest)
        if m and (m.group(2) in self.gone or m.group(1) != ORG or m.group(2) not in self.data.repos):
            return self._json(404, {"message": "Not Found", "documentation_url": "https://docs"})
        status, data, total = self._rest(method, rest, query, body)
        if not self.node_ids:
            data = _without_node_ids(data)
        status, hdrs, payload = self._json(status, data, resource="core")
        if status == 200 and total is not None:
            hdrs.update(self._page_headers(path, query, total))
        if status == 200 and method == "GET":
            etag = 'W/"' + hashlib.sha1(payload).hexdigest() + '"'
            hdrs["ETag"] = etag
            if headers.get("if-none-match") == etag:
                with self.lock:
                    self.remaining += 1  # conditional hits are free on GitHub
                    hdrs["X-RateLimit-Remaining"] = str(self.remaining)
                return 304, hdrs, b""
        if rest == "/user":
            hdrs["X-OAuth-Scopes"] = self.scopes
        return status, hdrs, payload

    @staticmethod
    def _paged(items: list[Any], query: dict[str, str]) -> tuple[int, list[Any], int]:
        per_page = min(max(int(query.get("per_page", 30)), 1), 100)
        page = max(int(query.get("page", 1)), 1)
        return 200, items[(page - 1) * per_page : page * per_page], len(items)

    def _page_headers(self, path: str, query: dict[str, str], total: int) -> dict[str, str]:
        per_page = min(max(int(query.get("per_page", 30)), 1), 100)
        page = max(int(query.get("page", 1)), 1)
        last = max((total + per_page - 1) // per_page, 1)

        def link(p: int, rel: str) -> str:
            return f'<{self.url}{path}?{urlencode({**query, "page": p})}>; rel="{rel}"'

        links = []
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        return {"Link": ", ".join(links)} if links else {}

    def _rest(
        self, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, Any, int | None]:
        d = self.data
        if path == "/user":
            return 200, {**d.user("alice"), "name": "Alice Liddell"}, None  # type: ignore[dict-item]
        if path == "/meta":
            return 200, {"verifiable_password_authentication": True, "installed_version": "3.12.0"}, None
        if path == f"/orgs/{ORG}":
            return 200, d.org(), None
        if path == f"/orgs/{ORG}/repos":
            return self._paged([d.repo(n) for n in d.repos], query)
        if path.startswith("/orgs/"):
            return 404, {"message": "Not Found"}, None
        m = re.match(r"^/repos/[^/]+/([^/]+)(?:/(.*))?$", path)
        if not m:
            return 404, {"message": "Not Found"}, None
        name, sub = m.group(1), m.group(2) or ""
        repo = d.repos[name]
        if sub == "":
            return 200, d.repo(name), None
        if sub == "pulls":
            key = "created_at" if query.get("sort", "created") == "created" else "updated_at"
            prs = sorted(
                repo.prs, key=lambda p: (p[key], p["number"]), reverse=query.get("direction") == "desc"
            )
            return self._paged(prs, query)
        if sub in ("issues/comments", "pulls/comments"):
            items = repo.issue_comments if sub == "issues/comments" else repo.review_comments
            since = query.get("since", "")
            items = sorted(
                (c for c in items if c["updated_at"] >= since), key=lambda c: (c["updated_at"], c["id"])
            )
            return self._paged(items, query)
        m3 = re.match(r"^issues/(\d+)$", sub)
        if m3:
            if not 1 <= int(m3.group(1)) <= len(repo.prs):
                return 404, {"message": "Not Found"}, None
            return 200, d.issue(name, int(m3.group(1))), None
        m2 = re.match(r"^pulls/(\d+)(?:/(commits|reviews))?$", sub)
        if not m2 or not 1 <= int(m2.group(1)) <= len(repo.prs):
            return 404, {"message": "Not Found"}, None
        number = int(m2.group(1))
        if m2.group(2) == "commits":
            return self._paged(repo.commits[number], query)
        if m2.group(2) == "reviews":
            return self._paged(repo.reviews[number], query)
        if method == "PATCH":
            change = orjson.loads(body or b"{}")
            d.touch_pr(name, number, **{k: v for k, v in change.items() if k in ("title", "body", "state")})
        return 200, d.pr_full(name, number), None

    def _graphql(self, req: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        query, variables = str(req.get("query", "")), req.get("variables") or {}
        if "membersWithRole" in query:
            if variables.get("org") != ORG:
                return self._json(
                    200,
                    {
                        "data": {"organization": None},
                        "errors": [
                            {
                                "type": "NOT_FOUND",
                                "message": f"Could not resolve to an Organization with the login of "
                                f"'{variables.get('org')}'.",
                            }
                        ],
                    },
                    resource="graphql",
                )
            members = [u for u in USERS if u.member]
            first = int(variables.get("first") or 100)
            start = (
                int(base64.b64decode(variables["after"]).decode().split(":")[1])
                if variables.get("after")
                else 0
            )
            chunk = members[start : start + first]
            end = start + len(chunk)
            conn = {
                "pageInfo": {
                    "hasNextPage": end < len(members),
                    "endCursor": base64.b64encode(f"cursor:{end}".encode()).decode(),
                },
                "nodes": [self.data.member_node(u) for u in chunk],
            }
            return self._json(200, {"data": {"organization": {"membersWithRole": conn}}}, resource="graphql")
        if "nodes(ids:" in query:
            ids = [str(i) for i in variables.get("ids") or []]
            nodes = [None if i in self.unresolvable else self.data.closers_node(i) for i in ids]
            body: dict[str, Any] = {"data": {"nodes": nodes}}
            missing = [i for i, n in zip(ids, nodes, strict=True) if n is None]
            if missing:  # GitHub: null in place, and an error per id it cannot resolve
                body["errors"] = [{"type": "NOT_FOUND", "path": ["nodes", ids.index(i)],
                                   "message": f"Could not resolve to a node with the global id of '{i}'."}
                                  for i in missing]
            return self._json(200, body, resource="graphql")
        if "node(id:" in query:
            found = self.data.pr_by_node(str(variables.get("id")))
            if found is None:
                return self._json(
                    200,
                    {
                        "data": {"node": None},
                        "errors": [
                            {
                                "type": "NOT_FOUND",
                                "path": ["node"],
                                "message": "Could not resolve to a node with the global id of "
                                f"'{variables.get('id')}'",
                            }
                        ],
                    },
                    resource="graphql",
                )
            name, pr = found
            return self._json(
                200,
                {
                    "data": {
                        "node": {"number": pr["number"], "repository": {"nameWithOwner": f"{ORG}/{name}"}}
                    }
                },
                resource="graphql",
            )
        return self._json(200, {"errors": [{"message": "unsupported query in the fake"}]}, resource="graphql")

    def _json(self, status: int, data: Any, resource: str = "core") -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            if status not in (401, 403):
                self.remaining = max(self.remaining - 1, 0)
            hdrs = {
                "Content-Type": "application/json; charset=utf-8",
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_at),
                "X-RateLimit-Used": str(self.limit - self.remaining),
                "X-RateLimit-Resource": resource,
                "X-GitHub-Enterprise-Version": "3.12.0",
                "X-GitHub-Request-Id": now_iso(),
            }
        return status, hdrs, orjson.dumps(data)


def _without_node_ids(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_node_ids(v) for k, v in data.items() if k != "node_id"}
    if isinstance(data, list):
        return [_without_node_ids(v) for v in data]
    return data


def _handler(fake: FakeGitHub) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one write (no Nagle/delayed-ACK stall per request)

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

        do_GET = do_POST = do_PATCH = _do  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler
