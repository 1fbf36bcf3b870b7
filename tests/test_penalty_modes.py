"""Proximal vs penalty mode, group lasso, max-norm, and weight decay vs an L2 penalty."""

from __future__ import annotations

import pytest
import torch
from conftest import all_runs, store_uri
from torch import nn

import reglab
from reglab.module import RegularizedModule
from reglab.regularizers import L2, NoPenalty

FAST = ["trainer.max_epochs=5", "callbacks=none"]


def _last(client, run_id: str, key: str) -> float:
    return client.get_metric_history(run_id, key)[-1].value


@pytest.mark.slow
def test_proximal_l1_makes_exact_zeros_where_the_subgradient_does_not(output_dir):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store_uri(output_dir))
    logged = {}
    for mode in ("proximal", "penalty"):
        result = reglab.run(
            [
                "regularizer=l1",
                f"regularizer.mode={mode}",
                "regularizer.strength=0.03",
                *FAST,
                f"paths.output_dir={output_dir}",
            ]
        )
        logged[mode] = {
            k: _last(client, result.run_id, f"weights/{k}") for k in ("zero_fraction", "near_zero_fraction")
        }
    assert logged["proximal"]["zero_fraction"] > 0
    assert logged["penalty"]["zero_fraction"] == 0
    assert logged["penalty"]["near_zero_fraction"] > 0
    assert {r.info.status for r in all_runs(store_uri(output_dir))} == {"FINISHED"}


def _dead_fraction(model: nn.Module) -> float:
    rows = [p.detach().reshape(p.shape[0], -1) for p in model.parameters() if p.ndim >= 2]
    return torch.cat([(r == 0).all(dim=1) for r in rows]).float().mean().item()


@pytest.mark.slow
def test_group_lasso_dead_units_grow_with_strength():
    fractions = []
    for strength in (0.01, 0.1, 0.3):
        result = reglab.run(
            [
                "regularizer=group_lasso",
                f"regularizer.strength={strength}",
                "optimizer=sgd",
                "trainer.max_epochs=10",
                "callbacks=none",
                "logger=none",
            ]
        )
        fractions.append(_dead_fraction(result.model))
    assert fractions == sorted(fractions)
    assert fractions[-1] > fractions[0]
    assert fractions[-1] > 0.2


def test_max_norm_bounds_every_unit_and_combines_with_dropout():
    result = reglab.run(
        ["regularizer=max_norm", "regularizer.max_norm=0.5", "dropout=0.3", *FAST, "logger=none"]
    )
    for p in result.model.parameters():
        if p.ndim >= 2:
            norms = torch.linalg.vector_norm(p.detach(), dim=1)
            assert norms.max() <= 0.5 + 1e-5
            assert norms.max() >= 0.5 - 1e-4  # the constraint was active (unconstrained: ~0.8)
    logged = result.history["weights/max_unit_norm"]
    assert len(logged) == 5 and all(0.5 - 1e-4 <= v <= 0.5 + 1e-5 for v in logged)
    from reglab.dropout import SeededDropout

    rates = [float(m.p) for m in result.model.modules() if isinstance(m, SeededDropout)]
    assert rates == pytest.approx([0.3, 0.3])


def _module(regularizer, optimizer) -> RegularizedModule:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    return RegularizedModule(model, regularizer, optimizer, task="classification", n_outputs=3)


def _train(module: RegularizedModule, steps: int = 5) -> list[torch.Tensor]:
    optimizer = module.configure_optimizers()
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 6, generator=generator)
        y = torch.randint(0, 3, (16,), generator=generator)
        optimizer.zero_grad()
        module.training_step((x, y), 0).backward()
        module.on_before_optimizer_step(optimizer)  # the penalty's gradient, as in a Trainer
        optimizer.step()
    return [p.detach().clone() for p in module.parameters()]


def _sgd(**kw):
    return lambda params: torch.optim.SGD(params, lr=0.1, **kw)


def test_with_plain_sgd_l2_penalty_and_weight_decay_coincide():
    penalized = _train(_module(L2(0.05), _sgd()))
    decayed = _train(_module(NoPenalty(), _sgd(weight_decay=0.05)))
    for a, b in zip(penalized, decayed, strict=True):
        torch.testing.assert_close(a, b)


def test_in_a_trainer_the_l2_gradient_is_sgds_coupled_weight_decay():
    """The penalty's gradient reaches every optimizer step of a real fit exactly once."""
    common = ["optimizer=sgd", "trainer.max_epochs=3", "callbacks=none", "logger=none"]
    penalized = reglab.run([*common, "regularizer=l2", "regularizer.strength=0.05"]).model
    decayed = reglab.run([*common, "regularizer=none", "optimizer.weight_decay=0.05"]).model
    plain = reglab.run([*common, "regularizer=none"]).model
    for a, b, c in zip(penalized.parameters(), decayed.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        if a.ndim >= 2:
            assert (a - c).abs().max() > 1e-3


def test_with_adam_l2_penalty_and_decoupled_weight_decay_differ():
    penalized = _train(_module(L2(0.05), lambda p: torch.optim.Adam(p, lr=0.01)))
    decoupled = _train(_module(NoPenalty(), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05)))
    weights = [(a, b) for a, b in zip(penalized, decoupled, strict=True) if a.ndim >= 2]
    assert all((a - b).abs().max() > 1e-4 for a, b in weights)


def test_weight_decay_reaches_only_the_ndim_2_weights():
    module = _module(NoPenalty(), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05))
    optimizer = module.configure_optimizers()
    decayed, not_decayed = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and all(p.ndim >= 2 for p in decayed["params"])
    assert not_decayed["weight_decay"] == 0.0 and all(p.ndim == 1 for p in not_decayed["params"])


@pytest.mark.slow
def test_readme_custom_regularizer_example_runs(output_dir, tmp_path):
    """The "Write your own regularizer" code and command of docs/penalties.md, verbatim."""
    import re
    import shlex

    from conftest import ROOT, run_cli

    page = (ROOT / "docs" / "penalties.md").read_text()
    section = page[page.index("## Write your own regularizer") :]
    code = re.search(r"```python\n(# my_penalties.py\n.*?)```", section, re.S).group(1)
    command = re.search(r"```bash\n(PYTHONPATH=\. python train\.py .*?)\n```", section).group(1)
    (tmp_path / "my_penalties.py").write_text(code)
    args = shlex.split(command)[3:]  # drop "PYTHONPATH=." "python" "train.py"
    done = run_cli([*args, "trainer.max_epochs=2"], output_dir, env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    (run,) = all_runs(store_uri(output_dir))
    assert run.info.status == "FINISHED"
    assert run.data.params["regularizer._target_"] == "my_penalties.HoyerSquare"
    assert run.data.metrics["train/penalty"] > 0
