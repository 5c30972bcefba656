"""A small Django project that real servers (uvicorn, daphne, runserver) serve in e2e tests.

Configured entirely from the environment that :mod:`tests.e2e_harness` builds: the database
(a SQLite file or a PostgreSQL database of its own), the moto server for provisioning APIs and
the loopback ``@connections`` endpoint (``FaultEndpoint``).
"""
