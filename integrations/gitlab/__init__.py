"""The GitLab integration (gitlab.com and self-managed GitLab, API v4), a plugin process on the SDK.

Modules, in the order an export uses them::

    config.py      GitLabConfig (pydantic, SecretStr): the entry's config; the API url of gitlab.com or a
                   self-managed server
    client.py      GitLabClient over a given httpx.Client: PRIVATE-TOKEN or OAuth bearer auth, 5xx retries
                   (tenacity), 429 waits, error mapping
    ratelimit.py   RateLimiter: RateLimit-* bookkeeping, reserve, Retry-After, waits with pause/resume events
    pagination.py  offset (X-Next-Page) and keyset (Link rel="next") paginators with loop detection
    endpoints.py   the API v4 endpoints the export walks, as data
    cursor.py      incremental tokens (pure functions): the updated_after walk position
    models.py      GitLab payloads -> sourcecode objects (ids per pinpoint_agent.ids)
    work.py        GitLab issues -> work objects, and their export (integration type WORK)
    walks.py       groups/projects/users listings and a project's ExportGitRepo request
    export.py      the code export: users, repos, per-project merge requests in nested sessions, git
    calls.py       validate-config, onboarding, mutations, webhooks
    integration.py GitLabIntegration: the SDK surface wiring them together
"""

from integrations.gitlab.integration import GitLabIntegration

__all__ = ["GitLabIntegration"]
