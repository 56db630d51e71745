"""The MLServer runtime of this project: MLServer's MLflow runtime, bad input refused.

MLServer answers 500 (and logs a traceback) when a V2 request cannot be decoded or fails
the model's signature, e.g. a string in an INT64 input: that is the client's error.
:class:`ChurnRuntime` turns those into MLServer's ``InferenceError`` (HTTP 400, a one-line
message). It runs in MLServer's own environment (.venv-mlserver), found through
``PYTHONPATH`` = the project root (make serve, verify, the image).
"""

from mlflow.exceptions import MlflowException
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_mlflow import MLflowRuntime


class ChurnRuntime(MLflowRuntime):
    """:class:`mlserver_mlflow.MLflowRuntime` whose input errors are 400s."""

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        try:
            return await super().predict(payload)
        except (MlflowException, ValueError, TypeError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InferenceError(f"invalid input: {first[:300]}") from None
