"""Online serving: a FastAPI app scoring churn with the registry's ``champion`` model.

Run it with ``python -m <package>.serving`` (host/port from ``SERVING_HOST`` /
``SERVING_PORT``) or ``uvicorn --factory <package>.serving.app:create_app``.
"""
