"""Test model zoo: small hand-written models exercised by the qir test-suite.

Import as ``from zoo.models import ZOO`` with ``tests/`` on ``sys.path``.
"""
