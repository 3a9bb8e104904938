from integrations.sdk.testing import IntegrationContract


class TestMockContract(IntegrationContract):
    integration_name = "mock"
    config = {"repos": 2, "prs_per_repo": 3, "users": 2}
    supported = {"export", "webhook"}


def test_mock_fast_hashcode_equals_the_generic_one():
    """The mock's specialised pull request hashcode is exactly ids.hashcode over the object."""
    from integrations.mock.integration import _pull_request, _repo
    from pinpoint_agent.ids import hashcode

    repo = _repo("cust", 3)
    for n in range(12):
        pr = _pull_request("cust", repo, n)
        assert pr["hashcode"] == hashcode(pr)
