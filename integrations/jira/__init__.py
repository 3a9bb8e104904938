"""The Jira integration (Jira Cloud and Jira Data Center/Server), a plugin process on the SDK.

The agent starts it for the entry names ``jira`` (Cloud when the host ends in ``.atlassian.net`` or
``.jira.com``, else Data Center), ``jira-cloud`` and ``jira-hosted`` (``pinpoint_agent.host.process`` maps
the two original names onto this package; the name reaches the plugin in every call).

Modules, in the order an export uses them::

    config.py      JiraConfig (pydantic, SecretStr): url, flavor, auth mode, filters, limits
    auth.py        the Authorization header: Basic (Cloud e-mail + API token, DC user + password), DC PAT
                   Bearer, OAuth 2.0 tokens from a provider callable (refreshed once after a 401)
    client.py      JiraClient over a given httpx.Client: slots, 429 waits, 5xx retries (tenacity), errors
    ratelimit.py   Limiter: Retry-After and Cloud's X-RateLimit-* headers, pacing near the limit,
                   waits with pause/resume events, bounded requests in flight per host
    pagination.py  nextPageToken and startAt paginators with loop detection
    endpoints.py   the REST/Agile endpoints per flavor (Cloud v3, Data Center v2), as data
    fields.py      which custom fields hold story points, sprints and epic links (from /field)
    cursor.py      incremental tokens and the JQL they become (pure functions; the user's time zone)
    adf.py         ADF (Cloud) and wiki markup (DC) bodies -> HTML; text -> ADF for new comments
    models.py      Jira payloads -> work.Project/User/Issue/IssueComment/Sprint (ids per the original agent)
    export.py      the export in nested sessions
    sprints.py     sprints of the scrum boards (Agile API)
    calls.py       validate-config, onboarding, mutations, webhooks
    integration.py JiraIntegration: the SDK surface wiring them together
"""

from integrations.jira.integration import JiraIntegration

__all__ = ["JiraIntegration"]
