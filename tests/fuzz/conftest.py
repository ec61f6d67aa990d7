"""The module-wide AWS emulation of tests/reliability: fuzzing runs many requests on one emulation."""

from tests.reliability.conftest import clean_aws, module_aws, module_client

__all__ = ["clean_aws", "module_aws", "module_client"]
