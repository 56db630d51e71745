"""Build and check the TensorFlow Serving model of this project (``serving=tf-serving``).

Runs in the TensorFlow environment, ``.venv-tf-serving`` (``make setup``), with numpy,
tensorflow and tensorflow-serving-api only: the project's package (scikit-learn, MLflow)
is not there. ``python -m <package>.serving.tf_export`` reads the champion's fitted
parameters into a JSON spec and calls this script:

* ``build SPEC OUT``: the SavedModel ``OUT/<model>/<version>/`` (``saved_model.pb`` +
  ``variables/``) computing the champion's scores as a float64 TensorFlow graph (median
  imputation, scaling, most-frequent imputation and one-hot encoding, then the linear
  model: sigmoid, softmax or identity), one named input per feature, the task's outputs;
  ``OUT/models.config`` (TF Serving's ``--model_config_file``, base path under
  ``--model-base``) and ``OUT/monitoring.config`` (``--monitoring_config_file``: Prometheus
  metrics on ``/metrics``, where Prometheus scrapes).
* ``check OUT --rows ROWS``: ``models.config`` parsed with TF Serving's own protos
  (``tensorflow_serving.config.model_server_config_pb2``), the SavedModel's
  ``serving_default`` signature read back, and the REST ``predict`` body of ``ROWS``
  (``{"signature_name": ..., "inputs": {feature: [values]}}``) validated against it (every
  input present, no extra key, each value of the input's dtype, one value per row).

Missing values: a number is NaN, a category the empty string (imputed as in training).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIGNATURE = "serving_default"
MONITORING_PATH = "/metrics"
"""Where TF Serving answers Prometheus (the compose Prometheus scrapes serving:8501/metrics)."""


def build_module(spec: dict[str, Any]) -> Any:
    """A ``tf.Module`` whose ``serve`` function scores feature tensors as the champion."""
    import numpy as np
    import tensorflow as tf

    numeric, categorical = spec["numeric"], spec["categorical"]
    coef = tf.constant(np.asarray(spec["coef"], dtype=np.float64))  # (outputs, features)
    intercept = tf.constant(np.asarray(spec["intercept"], dtype=np.float64))
    classes = tf.constant([str(c) for c in spec["classes"]] or [""])
    signature = {
        **{c["name"]: tf.TensorSpec([None], tf.float64, name=c["name"]) for c in numeric},
        **{c["name"]: tf.TensorSpec([None], tf.string, name=c["name"]) for c in categorical},
    }
    task, outputs, threshold = spec["task"], spec["outputs"], float(spec["threshold"])

    class LinearChampion(tf.Module):
        @tf.function(input_signature=[signature])
        def serve(self, features: dict[str, Any]) -> dict[str, Any]:
            columns = []
            for column in numeric:
                value = features[column["name"]]
                if column["fill"] is not None:
                    value = tf.where(
                        tf.math.is_nan(value), tf.constant(column["fill"], tf.float64), value
                    )
                columns.append((value - column["mean"]) / column["scale"])
            for column in categorical:
                value = features[column["name"]]
                value = tf.where(tf.equal(value, ""), tf.constant(column["fill"]), value)
                columns.extend(
                    tf.cast(tf.equal(value, category), tf.float64)
                    for category in column["categories"]
                )
            prepared = tf.stack(columns, axis=1)
            linear = tf.linalg.matmul(prepared, coef, transpose_b=True) + intercept
            if task == "regression":
                return {outputs["score"]: linear[:, 0]}
            if task == "binary":
                probability = tf.math.sigmoid(linear[:, 0])
                return {outputs["score"]: probability, outputs["label"]: probability >= threshold}
            probabilities = tf.nn.softmax(linear, axis=1)
            label = tf.gather(classes, tf.math.argmax(probabilities, axis=1))
            return {outputs["score"]: probabilities, outputs["label"]: label}

    return LinearChampion()


def models_config(name: str, base_path: str, version: int) -> str:
    """TF Serving's ``models.config`` (text proto): ``name`` at ``base_path``, one version."""
    return (
        "model_config_list {\n"
        "  config {\n"
        f"    name: {json.dumps(name)}\n"
        f"    base_path: {json.dumps(base_path)}\n"
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: " + str(version) + " } }\n"
        "  }\n"
        "}\n"
    )


def monitoring_config() -> str:
    """TF Serving's ``--monitoring_config_file``: Prometheus metrics on :data:`MONITORING_PATH`."""
    return "prometheus_config {\n  enable: true\n  path: " + json.dumps(MONITORING_PATH) + "\n}\n"


def build(spec_path: Path, out: Path, model_base: str) -> Path:
    """Write the SavedModel, ``models.config`` and ``monitoring.config`` under ``out``."""
    import shutil

    import tensorflow as tf

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    name, version = spec["model_name"], int(spec["version"])
    target = out / name / str(version)
    shutil.rmtree(target, ignore_errors=True)
    module = build_module(spec)
    tf.saved_model.save(module, str(target), signatures={SIGNATURE: module.serve})
    (out / "models.config").write_text(
        models_config(name, f"{model_base.rstrip('/')}/{name}", version), encoding="utf-8"
    )
    (out / "monitoring.config").write_text(monitoring_config(), encoding="utf-8")
    return target


def monitoring_config_message() -> Any:
    """An empty ``tensorflow.serving.MonitoringConfig`` message to parse into.

    Declared here from TF Serving's ``tensorflow_serving/config/monitoring_config.proto``
    (``PrometheusConfig {bool enable = 1; string path = 2;}``, ``MonitoringConfig
    {PrometheusConfig prometheus_config = 1;}``): the tensorflow-serving-api wheel ships
    ``model_server_config_pb2`` but not that module. Its own descriptor pool, so it cannot
    clash with a generated module imported later.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=field.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=field.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    found = pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
    return message_factory.GetMessageClass(found)()


def parse_config(out: Path) -> Any:
    """``models.config`` parsed into TF Serving's ``ModelServerConfig`` (text format).

    ``monitoring.config`` is parsed too (into :func:`monitoring_config_message`) and must
    enable Prometheus on :data:`MONITORING_PATH`.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(
        (out / "models.config").read_text(encoding="utf-8"),
        model_server_config_pb2.ModelServerConfig(),
    )
    monitoring = text_format.Parse(
        (out / "monitoring.config").read_text(encoding="utf-8"), monitoring_config_message()
    )
    prometheus = monitoring.prometheus_config
    if not prometheus.enable or prometheus.path != MONITORING_PATH:
        raise ValueError(f"monitoring.config: Prometheus must be enabled on {MONITORING_PATH}")
    return config


def signature_inputs(model_dir: Path) -> tuple[dict[str, str], list[str]]:
    """The ``serving_default`` inputs (name -> dtype name) and output names of a SavedModel."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((model_dir / "saved_model.pb").read_bytes())
    graph = next(g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags)
    signature = graph.signature_def[SIGNATURE]
    inputs = {key: types_pb2.DataType.Name(info.dtype) for key, info in signature.inputs.items()}
    return inputs, sorted(signature.outputs)


def rest_body(rows: list[dict[str, Any]], inputs: dict[str, str]) -> dict[str, Any]:
    """The REST ``:predict`` body (columnar ``inputs``) of ``rows``: NaN/empty for missing."""
    body: dict[str, list[Any]] = {}
    for key, dtype in inputs.items():
        blank: Any = "" if dtype == "DT_STRING" else math.nan
        body[key] = [blank if row.get(key) is None else row[key] for row in rows]
    return {"signature_name": SIGNATURE, "inputs": body}


def _fits(value: Any, dtype: str) -> bool:
    """Whether a JSON value fits an input of ``dtype`` (a string, else a number, not a bool)."""
    if dtype == "DT_STRING":
        return isinstance(value, str)
    return not isinstance(value, bool) and isinstance(value, int | float)


def body_problems(body: dict[str, Any], inputs: dict[str, str], count: int) -> list[str]:
    """What makes a REST ``:predict`` body unfit for the signature (empty when it fits)."""
    columns = body.get("inputs")
    if body.get("signature_name") != SIGNATURE or not isinstance(columns, dict):
        return [f"the body needs signature_name {SIGNATURE!r} and an 'inputs' object"]
    problems = [f"missing input {key!r}" for key in inputs if key not in columns]
    problems += [f"unknown input {key!r}" for key in columns if key not in inputs]
    for key, values in columns.items():
        if key not in inputs:
            continue
        if not isinstance(values, list) or len(values) != count:
            problems.append(f"input {key!r} is not a list of {count} values")
            continue
        wrong = [v for v in values if not _fits(v, inputs[key])]
        if wrong:
            problems.append(f"input {key!r} ({inputs[key]}) has values {wrong[:3]!r}")
    return problems


def check(out: Path, rows_path: Path) -> dict[str, Any]:
    """Parse the configs, read the signature back, validate the REST body of the rows."""
    config = parse_config(out)
    models = list(config.model_config_list.config)
    if len(models) != 1:
        raise SystemExit(f"error: {out / 'models.config'} lists {len(models)} models, expected 1")
    model = models[0]
    versions = list(model.model_version_policy.specific.versions)
    model_dir = out / model.name / str(versions[0] if versions else "")
    if model.model_platform != "tensorflow" or len(versions) != 1 or not model_dir.is_dir():
        raise SystemExit(f"error: models.config names {model_dir}, which is not a SavedModel here")
    inputs, output_names = signature_inputs(model_dir)
    rows = json.loads(rows_path.read_text(encoding="utf-8"))
    body = rest_body(rows, inputs)
    bad = {**body, "inputs": {**body["inputs"], "no_such_feature": [0.0] * len(rows)}}
    first = next(iter(inputs))
    wrong_type = {**body, "inputs": {**body["inputs"], first: [[1]] * len(rows)}}
    return {
        "name": model.name,
        "base_path": model.base_path,
        "versions": versions,
        "inputs": inputs,
        "outputs": output_names,
        "body_problems": body_problems(body, inputs, len(rows)),
        "refused": {
            "unknown input": body_problems(bad, inputs, len(rows)),
            "wrong type": body_problems(wrong_type, inputs, len(rows)),
            "one value short": body_problems(
                {**body, "inputs": {**body["inputs"], first: body["inputs"][first][1:]}},
                inputs,
                len(rows),
            ),
        },
        "body_bytes": len(json.dumps(body)),
    }


def main(argv: list[str] | None = None) -> int:
    """``build SPEC OUT [--model-base DIR]`` or ``check OUT --rows ROWS`` (JSON on stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="SavedModel + models.config from a spec")
    build_parser.add_argument("spec", type=Path)
    build_parser.add_argument("out", type=Path)
    build_parser.add_argument("--model-base", default="/models")
    check_parser = commands.add_parser("check", help="parse the configs, validate a REST body")
    check_parser.add_argument("out", type=Path)
    check_parser.add_argument("--rows", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "build":
        print(build(args.spec, args.out, args.model_base))
    else:
        print(json.dumps(check(args.out, args.rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
