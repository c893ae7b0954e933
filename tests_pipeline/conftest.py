# The consumer suite's fixtures (tests_pipeline/consumer_fixtures.py), registered once for the session.
pytest_plugins = ["consumer_fixtures"]
