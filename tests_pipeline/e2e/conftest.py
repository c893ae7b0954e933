# The end-to-end suite's fixtures (they override the consumer suite's fixtures of the same names in
# this folder only); helpers are imported from e2e_fixtures by the tests.
from e2e_fixtures import broker, client, pipeline, smtp, stack  # noqa: F401
