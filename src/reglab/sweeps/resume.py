"""``+resume=true``: find a FINISHED run of a job's config (in any earlier sweep of the
experiment), record on the parent run that the job reused it, and close what an earlier
launch of the same sweep left RUNNING."""

from __future__ import annotations

SKIPPED_TAG = "reglab.skipped"  # <SKIPPED_TAG>.<job> on a sweep's parent run: the run that job reused


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


def record_skip(uri: str, parent_run_id: str, job: int, run_id: str) -> None:
    """Tag the sweep's parent run with the FINISHED run that job ``job`` reused instead of
    training (``reglab.skipped.<job> = <run id>``): a run of any earlier sweep, which the
    report counts among this sweep's runs. Written when the job is skipped, so an
    interrupted launch keeps it too."""
    from mlflow import MlflowClient

    from reglab.tracking import connection_uri

    MlflowClient(tracking_uri=connection_uri(uri)).set_tag(parent_run_id, f"{SKIPPED_TAG}.{job}", run_id)
