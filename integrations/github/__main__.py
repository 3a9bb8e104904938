"""``python -m integrations.github``: the GitHub integration as a plugin process."""

from integrations.github.integration import GitHubIntegration
from integrations.sdk import serve

serve(GitHubIntegration)
