"""``python -m integrations.jira``: the Jira integration (Cloud and Data Center) as a plugin process."""

from integrations.jira.integration import JiraIntegration
from integrations.sdk import serve

serve(JiraIntegration)
