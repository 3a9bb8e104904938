"""The mock integration: users, commit users, repos and pull requests (sourcecode) or projects and
issues (work), sized by config, in nested sessions, incremental, with switches to fail on purpose.

Config (all optional)::

    {"users": 5, "repos": 2, "prs_per_repo": 3, "new_prs_per_run": 1,
     "projects": 0, "issues_per_project": 0, "git_repos": ["/path/to/repo"],
     "fail": {"mode": "raise|crash|signal|hang|flood|stdout", "after_objects": 0},
     "mutate_delay_ms": 0, "page_delay_ms": 0, "repo_credentials": "user:token", "cheap_objects": false}

``page_delay_ms`` waits that long after each page of (at most 1,000) pull requests, as an upstream API's latency
would: an export that lasts while a test does something to it.

``validate_config`` names ``git_repos[0]`` for the agent's test clone, with ``repo_credentials`` (if any).

Each run's token is ``run:<n>``. A historical run (no token) sends everything of run 1; run ``n`` adds
``new_prs_per_run`` pull requests per repo, and an incremental run sends only those.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import xxhash

from integrations.sdk import (
    ConfigError,
    Context,
    ExportProject,
    ExportResult,
    GitRepoRequest,
    Integration,
    MutateResult,
    OnboardObjectType,
    Session,
    ValidateResult,
    WebhookResult,
    split_url,
)
from pinpoint_agent.ids import hashcode, pull_request_id, repo_id, user_id

REF_TYPE = "mock"
FAIL_MODES = ("raise", "crash", "signal", "hang", "flood", "stdout")


def _with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    obj["hashcode"] = hashcode(obj)
    return obj


class _Failer:
    """Counts sent objects and misbehaves once the configured number is reached."""

    def __init__(self, spec: dict[str, Any] | None) -> None:
        spec = spec or {}
        self.mode = spec.get("mode", "")
        if self.mode and self.mode not in FAIL_MODES:
            raise ConfigError(f"mock: unknown fail mode {self.mode!r}; expected one of {', '.join(FAIL_MODES)}")
        self.after = int(spec.get("after_objects", 0))
        self.sent = 0

    def room(self) -> int:
        """How many more objects can be sent before the failure is due (at least 1)."""
        return max(1, self.after - self.sent) if self.mode else 1 << 62

    def tick(self, n: int = 1) -> None:
        self.sent += n
        if not self.mode or self.sent < self.after:
            return
        mode, self.mode = self.mode, ""
        if mode == "raise":
            raise RuntimeError(f"mock: failing on purpose after {self.sent} objects")
        if mode == "crash":
            print("mock: crashing on purpose", file=sys.stderr, flush=True)
            os._exit(17)
        if mode == "signal":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "hang":
            time.sleep(3600)
        if mode == "flood":
            chunk = "x" * 1023 + "\n"
            for _ in range(20 * 1024):  # 20 MiB of stderr: the host must drain it, not block the plugin
                sys.stderr.write(chunk)
            sys.stderr.flush()
        if mode == "stdout":
            os.write(1, b"mock: stray stdout line\n")


class MockIntegration(Integration):
    name = "mock"

    def export(self, ctx: Context) -> ExportResult:
        cfg = ctx.config
        agent = ctx.require_agent()
        failer = _Failer(cfg.get("fail"))
        cust = ctx.customer_id
        projects: list[ExportProject] = []
        with agent.session("organization", tracking=True) as org:
            run = _run_number(org.last_processed)
            incremental = run > 1
            with org.child("sourcecode.User", "org", "mock-org") as users:
                if not incremental:
                    for i in range(int(cfg.get("users", 5))):
                        users.send(_user(cust, i))
                        failer.tick()
            with org.child("sourcecode.CommitUser", "org", "mock-org") as commit_users:
                if not incremental:
                    for i in range(int(cfg.get("users", 5))):
                        commit_users.send({"customer_id": cust, "email": f"User{i}@Example.com",
                                           "name": f"User {i}", "source_id": str(1000 + i)})
            n_repos = int(cfg.get("repos", 2))
            with org.child("sourcecode.Repo", "org", "mock-org") as repos:
                if not incremental:
                    for r in range(n_repos):
                        repos.send(_repo(cust, r))
            for r in range(n_repos):
                projects.append(self._export_repo(ctx, org, r, run, failer))
            for path in cfg.get("git_repos", []):
                split = split_url(path)  # credentials inside the url travel apart, never in it
                name = os.path.basename(os.path.abspath(split.url))
                agent.export_git_repo(GitRepoRequest(
                    repo_id=repo_id(cust, REF_TYPE, name), unique_name=name, ref_type=REF_TYPE, url=split.url,
                    credentials=split.credentials,
                    commit_url_template=f"https://mock.example/{name}/commit/@@@sha@@@",
                    branch_url_template=f"https://mock.example/{name}/tree/@@@branch@@@"))
            self._export_work(ctx, org, run, failer)
            org.done(f"run:{run}")
        return ExportResult(projects=projects)

    def _export_repo(self, ctx: Context, org: Session, r: int, run: int, failer: _Failer) -> ExportProject:
        cfg, cust = ctx.config, ctx.customer_id
        repo = _repo(cust, r)
        per_repo, new_per_run = int(cfg.get("prs_per_repo", 3)), int(cfg.get("new_prs_per_run", 1))
        with org.child("sourcecode.PullRequest", repo["id"], repo["name"]) as prs:
            prev = _run_number(prs.last_processed) - 1  # runs already stored for this repo
            start = 0 if prev <= 0 else per_repo + (prev - 1) * new_per_run
            end = per_repo + (run - 1) * new_per_run
            total = end - start
            make = _cheap_pull_request if cfg.get("cheap_objects") else _pull_request
            page_delay = int(cfg.get("page_delay_ms", 0)) / 1000
            n = start
            while n < end:  # a chunk at a time, ending where a configured failure is due
                upto = min(n + 1000, end, n + failer.room())
                prs.send_many(make(cust, repo, i) for i in range(n, upto))
                failer.tick(upto - n)
                n = upto
                prs.progress(n - start, total)
                if page_delay:
                    time.sleep(page_delay)
            prs.done(f"run:{run}")  # a done session counts as complete: no final progress call needed
        return ExportProject(id=repo["id"], ref_id=repo["ref_id"], name=repo["name"])

    def _export_work(self, ctx: Context, org: Session, run: int, failer: _Failer) -> None:
        cfg, cust = ctx.config, ctx.customer_id
        n_projects, per_project = int(cfg.get("projects", 0)), int(cfg.get("issues_per_project", 0))
        if not n_projects:
            return
        with org.child("work.Project", "org", "mock-org") as projects:
            if run == 1:
                for p in range(n_projects):
                    projects.send(_with_hash({"id": f"project-{p}", "ref_id": str(p), "ref_type": REF_TYPE,
                                              "customer_id": cust, "name": f"Project {p}"}))
        for p in range(n_projects):
            with org.child("work.Issue", f"project-{p}", f"Project {p}") as issues:
                if _run_number(issues.last_processed) <= 1 or run == 1:
                    for i in range(per_project):
                        issues.send(_with_hash({"id": f"issue-{p}-{i}", "ref_id": f"{p}-{i}", "ref_type": REF_TYPE,
                                                "customer_id": cust, "project_id": f"project-{p}",
                                                "title": f"Issue {i} of project {p}"}))
                        failer.tick()
                issues.done(f"run:{run}")

    def validate_config(self, ctx: Context) -> ValidateResult:
        errors = []
        for key in ("users", "repos", "prs_per_repo"):
            value = ctx.config.get(key, 0)
            if not isinstance(value, int) or value < 0:
                errors.append(f"{key} must be a non-negative integer, got {value!r}")
        git = ctx.config.get("git_repos", [])
        return ValidateResult(errors=errors, repo_url=git[0] if git else "", server_version="mock-1.0",
                              repo_credentials=str(ctx.config.get("repo_credentials", "")))

    def onboard_export(self, ctx: Context, object_type: OnboardObjectType) -> Any:
        cust = ctx.customer_id
        if object_type == OnboardObjectType.USERS:
            return [_user(cust, i) for i in range(int(ctx.config.get("users", 5)))]
        if object_type == OnboardObjectType.REPOS:
            return [_repo(cust, r) for r in range(int(ctx.config.get("repos", 2)))]
        if object_type == OnboardObjectType.PROJECTS:
            return [{"id": f"project-{p}", "ref_id": str(p), "name": f"Project {p}"}
                    for p in range(int(ctx.config.get("projects", 0)))]
        return super().onboard_export(ctx, object_type)

    def mutate(self, ctx: Context, fn: str, data: Any) -> MutateResult:
        delay = int(ctx.config.get("mutate_delay_ms", 0))
        if delay:
            time.sleep(delay / 1000)
        if fn != "PR_SET_TITLE":
            return super().mutate(ctx, fn, data)
        if not isinstance(data, dict) or not isinstance(data.get("ref_id"), str) or not isinstance(
                data.get("title"), str):
            raise ConfigError("PR_SET_TITLE needs {\"ref_id\": str, \"title\": str}")
        pr = {"id": f"pr-{data['ref_id']}", "ref_id": data["ref_id"], "ref_type": REF_TYPE,
              "customer_id": ctx.customer_id, "title": data["title"]}
        return MutateResult(mutated_objects={"sourcecode.PullRequest": [_with_hash(pr)]},
                            webapp_response={"ok": True})

    def webhook(self, ctx: Context, headers: dict[str, str], body: bytes) -> WebhookResult:
        import orjson

        event = headers.get("X-Mock-Event") or headers.get("x-mock-event")
        if event != "pull_request":
            raise ConfigError(f"mock: unknown webhook event {event!r}")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"mock: webhook body is not JSON ({exc})") from exc
        repo = _repo(ctx.customer_id, int(payload.get("repo", 0)))
        pr = _pull_request(ctx.customer_id, repo, int(payload.get("number", 0)))
        return WebhookResult(mutated_objects={"sourcecode.PullRequest": [pr]})


def _run_number(token: str) -> int:
    """The run this export is: one more than the run stored in the token (``run:<n>``)."""
    if not token:
        return 1
    try:
        return int(token.removeprefix("run:")) + 1
    except ValueError:
        return 1


def _user(cust: str, i: int) -> dict[str, Any]:
    ref = str(1000 + i)
    return _with_hash({"id": user_id(cust, REF_TYPE, ref), "ref_id": ref, "ref_type": REF_TYPE,
                       "customer_id": cust, "name": f"User {i}", "username": f"user{i}", "email": "",
                       "associated_ref_id": None})


def _repo(cust: str, r: int) -> dict[str, Any]:
    name = f"mock-org/repo-{r}"
    return _with_hash({"id": repo_id(cust, REF_TYPE, str(r)), "ref_id": str(r), "ref_type": REF_TYPE,
                       "customer_id": cust, "name": name, "url": f"https://mock.example/{name}",
                       "language": "Python", "active": True})


def _pull_request(cust: str, repo: dict[str, Any], n: int) -> dict[str, Any]:
    ref = f"{repo['ref_id']}-{n}"
    pr = {
        "id": pull_request_id(cust, ref, REF_TYPE, repo["id"]), "ref_id": ref, "ref_type": REF_TYPE,
        "customer_id": cust, "repo_id": repo["id"], "identifier": f"{repo['name']}#{n}",
        "title": f"Change number {n} of {repo['name']}", "description": "A pull request made by the mock.",
        "created_date": {"epoch": 1700000000000 + n * 60000}, "merged": n % 3 == 0, "closed": n % 3 != 2,
        "url": f"{repo['url']}/pull/{n}", "created_by_ref_id": str(1000 + n % 5),
    }
    pr["hashcode"] = _pull_request_hashcode(pr)
    return pr


def _cheap_pull_request(cust: str, repo: dict[str, Any], n: int) -> dict[str, Any]:
    """Benchmark mode (``"cheap_objects": true``): a pull request of the same size and shape with a
    distinct id and hashcode, made in a fraction of the time, so a benchmark measures the SDK, the wire and
    the agent rather than the mock's own object building. Not datamodel-faithful (ids are not hashed)."""
    ref = f"{repo['ref_id']}-{n}"
    return {**_template(cust, repo), "id": f"{repo['id']}{n:08x}", "ref_id": ref, "hashcode": f"{n:016x}"}


_templates: dict[tuple[str, str], dict[str, Any]] = {}


def _template(cust: str, repo: dict[str, Any]) -> dict[str, Any]:
    key = (cust, repo["id"])
    if key not in _templates:
        _templates[key] = _pull_request(cust, repo, 0)
    return _templates[key]


def _pull_request_hashcode(pr: dict[str, Any]) -> str:
    """``ids.hashcode(pr)`` with the field order and types fixed, as generated datamodel code does it:
    about 4x faster than the generic walk, which matters when the mock feeds benchmarks."""
    text = "".join((
        "true" if pr["closed"] else "false", pr["created_by_ref_id"],
        f'{{"epoch":{pr["created_date"]["epoch"]}}}', pr["customer_id"], pr["description"], pr["id"],
        pr["identifier"], "true" if pr["merged"] else "false", pr["ref_id"], pr["ref_type"], pr["repo_id"],
        pr["title"], pr["url"]))
    return xxhash.xxh64_hexdigest(text.encode())
