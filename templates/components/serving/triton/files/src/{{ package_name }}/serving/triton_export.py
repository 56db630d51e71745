"""Export the champion for Triton (``serving=triton``): its ONNX graph and its identity.

``python -m <package>.serving.triton_export --out build/triton`` runs in the project's
environment (MLflow, scikit-learn, skl2onnx): :func:`.fetch_model.fetch_champion` resolves
the ``champion`` alias, converts the model to ONNX and checks ONNX Runtime against
sklearn on sample rows; this writes ``model.onnx`` and ``model.json`` (name, version,
run id) under ``--out``, which :mod:`.triton_server` serves from ``.venv-triton``. A
champion that does not convert to ONNX (e.g. text features) is refused in one line with
the reason: Triton's environment has ONNX Runtime, not scikit-learn.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import MODEL_ALIAS, load_settings
from .fetch_model import PICKLE_NAME, fetch_champion
from .triton_server import IDENTITY_FILE, MODEL_FILE


class NotConvertible(Exception):
    """The champion cannot be served as ONNX; the message says why (one line)."""


def export(
    tracking_uri: str, model_name: str, out: Path, alias: str = MODEL_ALIAS
) -> dict[str, str]:
    """Write ``alias`` of ``model_name`` as ``out/model.onnx`` + ``out/model.json``."""
    out.mkdir(parents=True, exist_ok=True)
    fetched = fetch_champion(tracking_uri, model_name, out, "onnx", alias)
    if fetched["runtime"] != "onnx":
        (out / PICKLE_NAME).unlink(missing_ok=True)
        raise NotConvertible(
            f"{model_name} v{fetched['version']} does not convert to ONNX"
            f" ({fetched['fallback']}); serving=triton serves ONNX graphs only"
        )
    written = {
        "name": model_name,
        "version": str(fetched["version"]),
        "run_id": str(fetched["run_id"]),
        "path": str(out / MODEL_FILE),
    }
    (out / IDENTITY_FILE).write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> None:
    """Export the champion of the configured model; print what was written as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("build/triton"))
    parser.add_argument("--tracking-uri", default=None, help="default: the project's settings")
    parser.add_argument("--alias", default=MODEL_ALIAS)
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        written = export(
            args.tracking_uri or settings.tracking_uri, settings.model_name, args.out, args.alias
        )
    except NotConvertible as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(written), flush=True)


if __name__ == "__main__":
    main()
