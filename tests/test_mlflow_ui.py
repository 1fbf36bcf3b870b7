"""The MLflow UI opens reglab's experiment on its training runs."""

from __future__ import annotations

from conftest import store_uri

from reglab import tracking
from reglab.tracking.store import EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT


def test_the_experiment_is_created_as_model_development(output_dir):
    uri = store_uri(output_dir)
    experiment_id = tracking.ensure_experiment(uri, "reglab", str(output_dir / "art"))
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    # an experiment made before the tag gets it; a kind the user chose is kept
    older = client.create_experiment("older")
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    tracking.ensure_experiment(uri, "older", None)
    tracking.ensure_experiment(uri, "chosen", None)
    assert client.get_experiment(older).tags[EXPERIMENT_KIND_TAG] == MODEL_DEVELOPMENT
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"
