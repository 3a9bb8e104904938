"""``python -m integrations.gitlab``: the GitLab integration as a plugin process."""

from integrations.gitlab.integration import GitLabIntegration
from integrations.sdk import serve

serve(GitLabIntegration)
