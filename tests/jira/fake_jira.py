"""A behaving fake Jira on ``127.0.0.1:0``, Cloud (REST v3) or Data Center (REST v2) flavour.

- Auth as each flavour takes it: Cloud ``Basic email:api_token`` or OAuth ``Bearer`` access tokens (an expired
  one answers 401 until the client gets a new one); Data Center ``Bearer <PAT>`` or ``Basic user:password``.
- Search: Cloud ``POST /rest/api/3/search/jql`` pages with an opaque ``nextPageToken`` (no total, ``isLast``);
  Data Center ``POST /rest/api/2/search`` pages with ``startAt`` and ``total`` and caps ``maxResults`` at 50.
  JQL ``project = "K" [AND updated >= "yyyy/MM/dd HH:mm"] ORDER BY updated ASC|DESC, key ASC`` is parsed (other
  JQL is a 400), the date read in the user's time zone (``/myself`` ``timeZone``: Europe/Berlin), to the minute.
  Only the ``fields`` asked for come back; ``changelog`` and ``renderedFields`` only when expanded. Embedded
  comments stop at ``EMBEDDED_COMMENTS`` and Cloud's embedded change log at ``EMBEDDED_HISTORIES`` (newest
  first), each with its ``total``: the rest is at ``/issue/{key}/comment`` and (Cloud) ``/issue/{key}/changelog``.
- Custom fields with per-flavour ids listed by ``/field``; Data Center writes sprints in the legacy string form.
- Agile API boards (one per project; kanban boards answer 400 for sprints) and sprints, ``isLast`` paging.
- Limits: ``fail(match, status, …)`` queues answers (429 with ``Retry-After`` and Cloud's ``X-RateLimit-*``
  headers, 503, 404…); ``latency`` delays every answer (benchmarks).
- Mutations: edit (summary, priority), transitions, assignee, comments; ``delete`` removes an issue.
Every request is recorded in ``requests`` (method, path, query, status).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import orjson

from tests.jira.fake_data import (
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUSES,
    TRANSITIONS,
    USERS,
    FakeData,
    Issue,
    jira_time,
)

EMAIL = "alice@acme.example"
API_TOKEN = "ATATT3xFfGF0-FAKE-cloud-token-SECRET"
PAT = "NjM2ODk4-FAKE-dc-pat-SECRET"
DC_USER, DC_PASSWORD = "alice", "dc-password-SECRET"
USER_TZ = "Europe/Berlin"
EMBEDDED_COMMENTS = 20
EMBEDDED_HISTORIES = 40
CUSTOM = {  # flavour -> (story points, story points (legacy name), sprint, epic link)
    True: ("customfield_10016", "customfield_10026", "customfield_10020", "customfield_10014"),
    False: ("customfield_10106", "", "customfield_10101", "customfield_10100"),
}
_JQL = re.compile(r'^\s*project\s*=\s*"?([A-Za-z0-9_]+)"?(?:\s+AND\s+updated\s*>=\s*"([^"]+)")?'
                  r"\s+ORDER\s+BY\s+updated\s+(ASC|DESC)(?:\s*,\s*key\s+(ASC|DESC))?\s*$", re.I)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class Failure:
    match: str
    status: int
    times: int = 1
    skip: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""


class FakeJira:
    def __init__(self, *, cloud: bool = True, latency: float = 0.0, **data: Any) -> None:
        self.cloud = cloud
        self.latency = latency
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.jqls: list[str] = []  # every JQL searched, in order
        self.oauth_tokens: set[str] = set()
        self.expired_tokens: set[str] = set()
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.data = FakeData(self.url, cloud=cloud, **data)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-jira", daemon=True)
        self.in_flight = 0
        self.peak_in_flight = 0

    def __enter__(self) -> FakeJira:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def api(self) -> str:
        return "/rest/api/3" if self.cloud else "/rest/api/2"

    def config(self, **extra: Any) -> dict[str, Any]:
        """The integration config that logs in to this fake (``flavor`` from the name; the host is 127.0.0.1)."""
        auth = {"username": EMAIL, "api_token": API_TOKEN} if self.cloud else {"access_token": PAT}
        return {"url": self.url, "flavor": "cloud" if self.cloud else "hosted", **auth, **extra}

    # -- controls ------------------------------------------------------------------------------------------
    def fail(self, match: str, status: int, *, times: int = 1, skip: int = 0, headers: dict[str, str] | None = None,
             message: str = "") -> None:
        with self.lock:
            self.failures.append(Failure(match, status, times, skip, headers or {}, message))

    def rate_limit(self, match: str, *, wait: int = 1, skip: int = 0, times: int = 1) -> None:
        """Cloud's 429: ``Retry-After`` plus the points-based headers."""
        self.fail(match, 429, skip=skip, times=times, message="Rate limit exceeded.", headers={
            "Retry-After": str(wait), "X-RateLimit-Limit": "350", "X-RateLimit-Remaining": "0",
            "X-RateLimit-NearLimit": "true", "RateLimit-Reason": "jira-burst-based",
            "X-RateLimit-Reset": datetime.fromtimestamp(time.time() + wait).astimezone().isoformat()})

    def count(self, contains: str = "", method: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if contains in r.path and (method is None or r.method == method))

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    def delete(self, key: str) -> None:
        issue = self.data.by_key(key)
        assert issue is not None
        self.data.deleted.add(issue.id)

    # -- routing -------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str],
                                                                                                 bytes]:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = unquote(parts.path)
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            status, extra, payload = self._route(method, path, query, headers, body)
        finally:
            with self.lock:
                self.in_flight -= 1
        with self.lock:
            self.requests.append(Recorded(method, path, query, status))
        return status, extra, payload

    def _authorised(self, auth: str) -> bool | None:
        """True: let in; False: 401; None: 401 for an expired OAuth token."""
        if auth.startswith("Bearer "):
            token = auth[7:]
            if token in self.expired_tokens:
                return None
            return token in self.oauth_tokens or (not self.cloud and token == PAT)
        if auth.startswith("Basic "):
            try:
                user, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return False
            return (user, secret) == ((EMAIL, API_TOKEN) if self.cloud else (DC_USER, DC_PASSWORD))
        return False

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        if not self._authorised(headers.get("authorization", "")):
            # Jira answers 401 without a body naming the reason; Cloud adds a WWW-Authenticate header
            return 401, {"WWW-Authenticate": 'OAuth realm="https%3A%2F%2Facme.atlassian.net"',
                         "Content-Type": "text/html"}, b"Unauthorized"
        target = path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        with self.lock:
            for f in self.failures:
                if f.match in target and f.times > 0:
                    if f.skip > 0:
                        f.skip -= 1
                        continue
                    f.times -= 1
                    status, hdrs, data = self._json(f.status, {"errorMessages": [f.message or "failure"],
                                                               "errors": {}})
                    return status, {**hdrs, **f.headers}, data
        payload = orjson.loads(body) if body else None
        try:
            status, data = self._rest(method, path, query, payload)
        except _Answer as answer:
            status, data = answer.status, answer.data
        if status == 204:
            return 204, {}, b""
        return self._json(status, data)

    def _rest(self, method: str, path: str, q: dict[str, str], body: Any) -> tuple[int, Any]:
        d, api = self.data, self.api
        if self.cloud and path == "/rest/api/2/serverInfo":
            path = "/rest/api/3/serverInfo"  # Cloud serves v2 too; the fake only this one v2 endpoint
        if path.startswith("/rest/api/") and not path.startswith(api + "/"):
            raise _Answer(404, {"errorMessages": ["null for uri: " + path]}) if not self.cloud else _Answer(
                404, {"errorMessages": [], "errors": {}})
        if path.startswith(api):
            sub = path[len(api):]
        elif path.startswith("/rest/agile/1.0"):
            return self._agile(path[len("/rest/agile/1.0"):], q)
        else:
            raise _Answer(404, {"errorMessages": ["Not found"]})
        if sub == "/serverInfo":
            info = {"baseUrl": self.url, "version": "1001.0.0-SNAPSHOT" if self.cloud else "9.12.2",
                    "versionNumbers": [1001, 0, 0] if self.cloud else [9, 12, 2],
                    "deploymentType": "Cloud" if self.cloud else "Server", "buildNumber": 100246,
                    "serverTime": jira_time(d.clock), "serverTitle": "Acme Jira"}
            if not self.cloud:
                info["deploymentType"] = "Server"
            return 200, info
        if sub == "/myself":
            return 200, {**(d.user(0) or {}), "timeZone": USER_TZ, "locale": "en_US"}
        if sub == "/field":
            return 200, self._fields()
        if sub == "/mypermissions":
            return 200, {"permissions": {p: {"id": "10", "key": p, "name": p.title(), "type": "PROJECT",
                                             "havePermission": True} for p in q.get("permissions", "").split(",")
                                         if p}}
        if sub == "/status":
            return 200, [d.status(s[0]) for s in STATUSES]
        if sub == "/priority":
            return 200, [{"self": f"{self.url}{api}/priority/{i}", "id": i, "name": n, "statusColor": "#fff"}
                         for i, n in PRIORITIES]
        if sub == "/issuetype":
            return 200, [d.issue_type(t[0]) for t in ISSUE_TYPES]
        if sub == "/resolution":
            return 200, [{"self": f"{self.url}{api}/resolution/{i}", "id": i, "name": n, "description": ""}
                         for i, n in RESOLUTIONS]
        if sub == "/project/search" and self.cloud:
            return 200, self._offset(q, [d.project(p) for p in d.projects], cap=50)
        if sub == "/project" and not self.cloud:
            return 200, [d.project(p) for p in d.projects]
        if sub == "/users/search" and self.cloud:
            return 200, self._array(q, d.users())
        if sub == "/user/search" and not self.cloud:
            if "username" not in q:
                raise _Answer(400, {"errorMessages": ["The username query parameter was not provided"]})
            return 200, self._array(q, d.users())
        if sub == "/search/jql" and self.cloud and method in ("GET", "POST"):
            return 200, self._search_cloud(body if method == "POST" else dict(q))
        if sub == "/search" and not self.cloud and method in ("GET", "POST"):
            return 200, self._search_dc(body if method == "POST" else dict(q))
        if sub in ("/search",) and self.cloud:
            raise _Answer(410, {"errorMessages": ["The requested API has been removed. Please migrate to the "
                                                  "/rest/api/3/search/jql API."]})
        m = re.match(r"^/issue/([^/]+)(?:/(comment|changelog|transitions|assignee)(?:/(\d+))?)?$", sub)
        if m:
            return self._issue(method, m.group(1), m.group(2), m.group(3), q, body)
        raise _Answer(404, {"errorMessages": ["Not found: " + sub]})

    # -- pieces --------------------------------------------------------------------------------------------
    def _fields(self) -> list[dict[str, Any]]:
        sp, sp_legacy, sprint, epic = CUSTOM[self.cloud]

        def custom(fid: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
            num = int(fid.rsplit("_", 1)[1])
            return {"id": fid, "key": fid, "name": name, "untranslatedName": name, "custom": True, "orderable": True,
                    "navigable": True, "searchable": True, "clauseNames": [f"cf[{num}]", name],
                    "schema": {**schema, "customId": num}}

        system = [{"id": n, "key": n, "name": n.title(), "custom": False, "orderable": True, "navigable": True,
                   "searchable": True, "clauseNames": [n], "schema": {"type": "string", "system": n}}
                  for n in ("summary", "status", "priority", "assignee", "labels", "created", "updated")]
        out = [*system,
               custom("customfield_10000", "Team",
                      {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield"}),
               custom(sprint, "Sprint", {"type": "array", "items": "json",
                                         "custom": "com.pyxis.greenhopper.jira:gh-sprint"}),
               custom(epic, "Epic Link", {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-epic-link"})]
        if self.cloud:
            out.append(custom(sp, "Story point estimate",
                              {"type": "number", "custom": "com.pyxis.greenhopper.jira:jsw-story-points"}))
            out.append(custom(sp_legacy, "Story Points",
                              {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"}))
        else:
            out.append(custom(sp, "Story Points",
                              {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"}))
        return out

    @staticmethod
    def _offset(q: dict[str, str], items: list[Any], cap: int, key: str = "values") -> dict[str, Any]:
        start = max(int(q.get("startAt", 0)), 0)
        size = min(max(int(q.get("maxResults", cap)), 1), cap)
        chunk = items[start:start + size]
        return {"startAt": start, "maxResults": size, "total": len(items),
                "isLast": start + len(chunk) >= len(items), key: chunk}

    @staticmethod
    def _array(q: dict[str, str], items: list[Any]) -> list[Any]:
        start = max(int(q.get("startAt", 0)), 0)
        size = min(max(int(q.get("maxResults", 50)), 1), 1000)
        return items[start:start + size]

    def _matching(self, jql: str) -> list[Issue]:
        with self.lock:
            self.jqls.append(jql)
        m = _JQL.match(jql or "")
        if not m:
            raise _Answer(400, {"errorMessages": [f"Error in the JQL Query: cannot parse {jql!r} in this fake"],
                                "errors": {}})
        key, since, direction, key_dir = m.group(1).upper(), m.group(2), m.group(3).upper(), (m.group(4) or "ASC")
        project = next((p for p in self.data.projects if p.key == key), None)
        if project is None:
            raise _Answer(400, {"errorMessages": [f"The value '{key}' does not exist for the field 'project'."],
                                "errors": {}})
        issues = [i for i in self.data.issues.values() if i.project == project.id and i.id not in self.data.deleted]
        if since:
            try:
                floor = datetime.strptime(since, "%Y/%m/%d %H:%M").replace(tzinfo=ZoneInfo(USER_TZ))
            except ValueError:
                raise _Answer(400, {"errorMessages": [f"Date value '{since}' for field 'updated' is invalid."],
                                    "errors": {}}) from None
            issues = [i for i in issues if i.updated.replace(second=0, microsecond=0) >= floor]
        # ORDER BY updated <dir>, key <dir>: sort by the second key, then (stable) by the first
        issues.sort(key=lambda i: (i.key.split("-")[0], int(i.key.split("-")[1])), reverse=key_dir.upper() == "DESC")
        issues.sort(key=lambda i: i.updated, reverse=direction == "DESC")
        return issues

    def _search_cloud(self, body: dict[str, Any]) -> dict[str, Any]:
        issues = self._matching(str(body.get("jql") or ""))
        token = body.get("nextPageToken")
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(str(token)).decode().split(":")[1])
            except (ValueError, IndexError):
                raise _Answer(400, {"errorMessages": ["Invalid nextPageToken"]}) from None
        size = min(max(int(body.get("maxResults") or 50), 1), 100)
        chunk = issues[start:start + size]
        fields = _list(body.get("fields")) or ["id"]
        expand = _list(body.get("expand"))
        out: dict[str, Any] = {"issues": [self.issue_payload(i, fields, expand, search=True) for i in chunk]}
        if start + size < len(issues):
            out["nextPageToken"] = base64.urlsafe_b64encode(f"page:{start + size}:{time.time_ns()}".encode()).decode()
            out["isLast"] = False
        else:
            out["isLast"] = True
        return out

    def _search_dc(self, body: dict[str, Any]) -> dict[str, Any]:
        issues = self._matching(str(body.get("jql") or ""))
        start = max(int(body.get("startAt") or 0), 0)
        size = min(max(int(body.get("maxResults") or 50), 1), 50)
        chunk = issues[start:start + size]
        fields = _list(body.get("fields")) or ["*navigable"]
        expand = _list(body.get("expand"))
        return {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(issues),
                "issues": [self.issue_payload(i, fields, expand, search=True) for i in chunk]}

    def issue_payload(self, i: Issue, fields: list[str], expand: list[str], *, search: bool) -> dict[str, Any]:
        d = self.data
        sp, sp_legacy, sprint, epic = CUSTOM[self.cloud]
        comments = i.comments[:EMBEDDED_COMMENTS] if search else i.comments
        all_fields: dict[str, Any] = {
            "summary": i.summary, "issuetype": d.issue_type(i.type_id), "status": d.status(i.status_id),
            "priority": {"self": f"{self.url}/rest/api/2/priority/{i.priority_id}", "id": i.priority_id,
                         "name": dict(PRIORITIES)[i.priority_id]},
            "resolution": {"id": i.resolution_id, "name": dict(RESOLUTIONS)[i.resolution_id], "description": ""}
            if i.resolution_id else None,
            "resolutiondate": jira_time(i.resolved) if i.resolved else None,
            "assignee": d.user(i.assignee), "reporter": d.user(i.reporter), "creator": d.user(i.reporter),
            "labels": i.labels, "components": [{"id": "10000", "name": "API"}] if i.labels else [],
            "fixVersions": [{"id": "10010", "name": "1.0", "released": False}] if i.id % 2 else [],
            "subtasks": [], "issuelinks": [self._link(i, lk) for lk in i.links],
            "created": jira_time(i.created), "updated": jira_time(i.updated), "duedate": "2024-06-30",
            "project": d.project(next(p for p in d.projects if p.id == i.project)),
            "description": d.body(f"Description of {i.key}"),
            "comment": {"comments": [d.comment(c) for c in comments], "self": "", "maxResults": len(comments),
                        "total": len(i.comments), "startAt": 0},
            sp: i.story_points, sprint: d.sprint_field(i.sprint_ids), epic: i.epic_key or None,
            "customfield_10000": "Platform",
        }
        if sp_legacy:
            all_fields[sp_legacy] = None
        if i.parent is not None:
            parent = d.issues[i.parent]
            all_fields["parent"] = {"id": str(parent.id), "key": parent.key, "fields": {
                "summary": parent.summary, "status": d.status(parent.status_id),
                "issuetype": d.issue_type(parent.type_id)}}
        if "*all" in fields or "*navigable" in fields:
            chosen = all_fields
        else:
            chosen = {k: v for k, v in all_fields.items() if k in fields}
        out: dict[str, Any] = {"expand": "renderedFields,names,schema,operations,editmeta,changelog",
                               "id": str(i.id), "self": f"{self.url}{self.api}/issue/{i.id}", "key": i.key,
                               "fields": chosen}
        if "renderedFields" in expand:
            rendered: dict[str, Any] = {"description": f"<p>Description of {i.key}</p>"}
            if "comment" in chosen:
                rendered["comment"] = {"comments": [{**d.comment(c), "body": f"<p>{c.text}</p>"} for c in comments],
                                       "maxResults": len(comments), "total": len(i.comments), "startAt": 0}
            out["renderedFields"] = rendered
        if "changelog" in expand:
            histories = list(reversed(i.histories)) if self.cloud else list(i.histories)
            if self.cloud and search:
                histories = histories[:EMBEDDED_HISTORIES]
            out["changelog"] = {"startAt": 0, "maxResults": len(histories), "total": len(i.histories),
                                "histories": [d.history(h) for h in histories]}
        return out

    def _link(self, i: Issue, link: tuple[str, int, bool]) -> dict[str, Any]:
        kind, other_id, inward = link
        other = self.data.issues[other_id]
        ref = {"id": str(other.id), "key": other.key, "fields": {"summary": other.summary}}
        return {"id": f"1{i.id}", "type": {"id": "10000", "name": kind, "inward": "is blocked by",
                                           "outward": "blocks"}, ("inwardIssue" if inward else "outwardIssue"): ref}

    def _issue(self, method: str, key: str, sub: str | None, item: str | None, q: dict[str, str],
               body: Any) -> tuple[int, Any]:
        d = self.data
        issue = d.by_key(key)
        if issue is None:
            raise _Answer(404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."],
                                "errors": {}})
        if sub is None and method == "GET":
            fields = _list(q.get("fields")) or ["*all"]
            return 200, self.issue_payload(issue, fields, _list(q.get("expand")), search=False)
        if sub is None and method == "PUT":
            changes = (body or {}).get("fields") or {}
            if "summary" in changes:
                d.touch(issue, summary=str(changes["summary"]))
            if "priority" in changes:
                prio = changes["priority"]
                pid = prio.get("id") or {n: i for i, n in PRIORITIES}.get(prio.get("name"))
                if pid not in dict(PRIORITIES):
                    raise _Answer(400, {"errorMessages": [], "errors": {"priority": "Specify a valid priority"}})
                d.touch(issue, priority_id=pid)
            return 204, None
        if sub == "comment" and item is not None:
            c = next((c for c in issue.comments if c.id == int(item)), None)
            if c is None:
                raise _Answer(404, {"errorMessages": ["Can not find a comment for the id: " + item]})
            return 200, d.comment(c, rendered="renderedBody" in q.get("expand", ""))
        if sub == "comment" and method == "GET":
            rendered = "renderedBody" in q.get("expand", "")
            return 200, self._offset(q, [d.comment(c, rendered=rendered) for c in issue.comments], cap=100,
                                     key="comments")
        if sub == "comment" and method == "POST":
            text = (body or {}).get("body")
            if self.cloud and not isinstance(text, dict):
                raise _Answer(400, {"errorMessages": [], "errors": {"comment": "Comment body is not valid!"}})
            if not self.cloud and not isinstance(text, str):
                raise _Answer(400, {"errorMessages": ["Can not deserialize instance of java.lang.String"]})
            plain = text if isinstance(text, str) else "".join(
                n.get("text", "") for p in text.get("content", []) for n in p.get("content", []))
            c = d.add_comment(issue, 0, plain)
            return 201, d.comment(c, rendered="renderedBody" in q.get("expand", ""))
        if sub == "changelog" and self.cloud:
            return 200, self._offset(q, [d.history(h) for h in issue.histories], cap=100)
        if sub == "transitions" and method == "GET":
            return 200, {"expand": "transitions", "transitions": [
                {"id": t, "name": f"Move to {d.status(s)['name']}", "to": d.status(s), "hasScreen": False,
                 "isGlobal": True, "isInitial": False, "isAvailable": True, "isConditional": False}
                for t, s in TRANSITIONS.items() if s != issue.status_id]}
        if sub == "transitions" and method == "POST":
            tid = str(((body or {}).get("transition") or {}).get("id") or "")
            if tid not in TRANSITIONS or TRANSITIONS[tid] == issue.status_id:
                raise _Answer(400, {"errorMessages": [f"Transition id '{tid}' is not valid for this issue."],
                                    "errors": {}})
            d.transition(issue, TRANSITIONS[tid])
            return 204, None
        if sub == "assignee" and method == "PUT":
            who = (body or {}).get("accountId" if self.cloud else "name")
            if who is None:
                d.touch(issue, assignee=None)
                return 204, None
            idx = next((n for n, u in enumerate(USERS) if who in ((u.account_id,) if self.cloud else (u.name,))), None)
            if idx is None:
                raise _Answer(400, {"errorMessages": [], "errors": {"assignee": f"User '{who}' does not exist."}})
            d.touch(issue, assignee=idx)
            return 204, None
        raise _Answer(405, {"errorMessages": ["Method not allowed"]})

    def _agile(self, sub: str, q: dict[str, str]) -> tuple[int, Any]:
        d = self.data
        boards = [{"id": n + 1, "self": f"{self.url}/rest/agile/1.0/board/{n + 1}", "name": f"{p.key} board",
                   "type": p.board_type, "location": {"projectId": int(p.id), "projectKey": p.key,
                                                      "projectName": p.name}}
                  for n, p in enumerate(d.projects)]
        if sub == "/board":
            return 200, self._offset(q, boards, cap=50)
        m = re.match(r"^/board/(\d+)/sprint$", sub)
        if m:
            board = next((b for b in boards if b["id"] == int(m.group(1))), None)
            if board is None:
                raise _Answer(404, {"errorMessages": ["Board does not exist or you do not have permission to see it."]})
            if board["type"] != "scrum":
                raise _Answer(400, {"errorMessages": ["The board does not support sprints"], "errors": {}})
            sprints = [d.sprint(s) for s, (_, _, b) in d.sprints.items() if b == board["id"]]
            return 200, self._offset(q, sprints, cap=50)
        raise _Answer(404, {"errorMessages": ["Not found"]})

    def _json(self, status: int, data: Any) -> tuple[int, dict[str, str], bytes]:
        hdrs = {"Content-Type": "application/json;charset=UTF-8", "X-AREQUESTID": str(time.time_ns()),
                "X-Seraph-LoginReason": "OK"}
        if self.cloud:
            hdrs["ATL-TraceId"] = "fake"
        return status, hdrs, orjson.dumps(data)


class _Answer(Exception):
    def __init__(self, status: int, data: Any) -> None:
        super().__init__(status)
        self.status, self.data = status, data


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _handler(fake: FakeJira) -> Callable[..., BaseHTTPRequestHandler]:
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
                status, extra, payload = 500, {}, orjson.dumps({"errorMessages": [f"fake bug: {exc!r}"]})
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _do  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler
