"""The module-wide AWS emulation of tests/reliability, for suites of many small cases here too."""

from tests.reliability.conftest import clean_aws, module_aws, module_client

__all__ = ["clean_aws", "module_aws", "module_client"]
