"""The GitHub integration (github.com and GitHub Enterprise), a plugin process on the SDK.

Modules, in the order an export uses them::

    config.py      GitHubConfig: the entry's config, validated; API urls for github.com or Enterprise
    client.py      GitHubClient over a given httpx.Client: auth, retries, conditional requests, errors
    ratelimit.py   RateLimiter: quota bookkeeping, reserve, waits with pause/resume events
    pagination.py  Link-header and GraphQL cursor paginators with loop detection
    endpoints.py   the REST/GraphQL endpoints the export walks, as data
    cursor.py      incremental tokens of the pull request sessions (pure functions)
    models.py      GitHub payloads -> pinpoint datamodel objects (ids per pinpoint_agent.ids)
    walks.py       members and repos listings, and a repo's ExportGitRepo request
    export.py      the export: users, repos, per-repo pull requests in nested sessions, ExportGitRepo
    calls.py       validate-config, onboarding, mutations, webhooks
    integration.py GitHubIntegration: the SDK surface wiring them together
"""

from integrations.github.integration import GitHubIntegration

__all__ = ["GitHubIntegration"]
