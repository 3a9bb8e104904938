from integrations.sdk.testing import IntegrationContract


class TestMockContract(IntegrationContract):
    integration_name = "mock"
    config = {"repos": 2, "prs_per_repo": 3, "users": 2}
    supported = {"export", "webhook"}
