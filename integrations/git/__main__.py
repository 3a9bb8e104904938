from integrations.git.integration import GitIntegration
from integrations.sdk import serve

serve(GitIntegration)
