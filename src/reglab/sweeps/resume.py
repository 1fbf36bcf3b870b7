"""``+resume=true``: find what an earlier launch of the same sweep already finished, and
close what it left RUNNING."""

from __future__ import annotations


def kill_abandoned_runs(uri: str, experiment_id: str, sweep_signature: str) -> int:
    """Mark runs of an earlier launch of the same sweep still RUNNING as KILLED."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`reglab.sweep_signature` = '{sweep_signature}' and attributes.status = 'RUNNING'"
        ),
        max_results=10_000,
    )
    for run in runs:
        client.set_tag(run.info.run_id, "reglab.failure_reason", "abandoned by an interrupted sweep")
        client.set_terminated(run.info.run_id, "KILLED")
    return len(runs)


def finished_run_with_hash(uri: str, experiment_id: str, config_hash: str):
    """A FINISHED run of the experiment with this config hash, or ``None``."""
    from mlflow import MlflowClient

    runs = MlflowClient(tracking_uri=uri).search_runs(
        [experiment_id],
        filter_string=(f"tags.`reglab.config_hash` = '{config_hash}' and attributes.status = 'FINISHED'"),
        max_results=1,
    )
    return runs[0] if runs else None
