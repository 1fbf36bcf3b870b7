"""The stacked engine (reglab.stacked): its parts against torch's, and a stack's members
against their sequential runs."""

from __future__ import annotations

import pytest
import torch
from conftest import all_runs, child_runs, run_cli, store_uri

from reglab.errors import ConfigError

FLOAT64 = ["+trainer.precision=64", "logger=none", "callbacks.early_stopping.patience=2", "optimizer.lr=3e-3"]
DIFFERING = [  # seed, regularizer, strength and mode differ; patience too
    ["seed=0", "regularizer=none"],
    ["seed=1", "regularizer=l1", "regularizer.strength=1e-3", "regularizer.mode=proximal"],
    ["seed=2", "regularizer=l2", "regularizer.strength=1e-2"],
    ["seed=3", "regularizer=elastic", "regularizer.strength=3e-3", "callbacks.early_stopping.patience=4"],
]


def members_of(jobs: list[list[str]], output_dir):
    from reglab.config import compose_with_choices
    from reglab.pipeline import prepare
    from reglab.stacked.members import Member

    members = []
    for i, overrides in enumerate(jobs):
        cfg, choices = compose_with_choices([*overrides, "logger=none", f"paths.output_dir={output_dir}"])
        members.append(Member(i, cfg, overrides, choices, output_dir / str(i), prepare(cfg)))
    return members


# -- parts ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("SGD", {"momentum": [0.0, 0.9, 0.5], "weight_decay": [0.0, 1e-2, 1e-3], "lr": [0.1, 0.05, 0.01]}),
        ("SGD", {"momentum": [0.9, 0.9, 0.8], "nesterov": True, "lr": [0.1, 0.05, 0.01]}),
        ("Adam", {"weight_decay": [0.0, 1e-2, 1e-1], "lr": [1e-3, 3e-3, 1e-2]}),
        ("AdamW", {"weight_decay": [0.0, 1e-2, 1e-1], "lr": [1e-3, 3e-3, 1e-2]}),
    ],
)
def test_stacked_optimizer_steps_each_member_as_torch_optim(name, options):
    from reglab.stacked.optim import StackedOptimizer

    torch.manual_seed(0)
    k = 3
    per_member = {key: value for key, value in options.items() if isinstance(value, list)}
    shared = {key: value for key, value in options.items() if not isinstance(value, list)}
    start = torch.randn(k, 4, 5, dtype=torch.float64)
    stacked = torch.nn.Parameter(start.clone())
    values = {
        key: torch.tensor(per_member.get(key, [0.0] * k), dtype=torch.float64)
        for key in ("lr", "weight_decay", "momentum")
    }
    kind = {"SGD": "sgd", "Adam": "adam", "AdamW": "adamw"}[name]
    stacked_optimizer = StackedOptimizer([{"params": [stacked], "decay": True}], kind, **values, **shared)
    singles = [torch.nn.Parameter(start[i].clone()) for i in range(k)]
    optimizers = [
        getattr(torch.optim, name)([singles[i]], **{key: v[i] for key, v in per_member.items()}, **shared)
        for i in range(k)
    ]
    for _ in range(6):
        grad = torch.randn(k, 4, 5, dtype=torch.float64)
        stacked.grad = grad.clone()
        stacked_optimizer.step()
        for i in range(k):
            singles[i].grad = grad[i].clone()
            optimizers[i].step()
    for i in range(k):
        torch.testing.assert_close(stacked.detach()[i], singles[i].detach(), rtol=1e-12, atol=1e-14)


def test_the_batched_penalty_gradient_is_each_regularizers_own():
    """elastic_gradient's (l1, l2), which a stack adds for all members in one call, give each
    regularizer's own add_gradient exactly; a proximal mode, a non-elastic penalty or an
    ElasticNet subclass whose penalty autograd differentiates has none."""
    from reglab import regularizers as r

    class Squared(r.ElasticNet):
        def penalty(self, weights):
            return super().penalty(weights).square()

    torch.manual_seed(0)
    for regularizer in (r.NoPenalty(1.0), r.L1(1e-2), r.L2(1e-2), r.ElasticNet(1e-2, 0.3)):
        weight = torch.randn(3, 4, dtype=torch.float64)
        batched, own = weight.clone(), weight.clone()
        batched.grad, own.grad = (torch.ones_like(weight) for _ in range(2))  # the data loss's
        r.add_elastic_gradient([batched], *r.elastic_gradient(regularizer))
        regularizer.add_gradient([own])
        torch.testing.assert_close(batched.grad, own.grad, rtol=0, atol=0)
    others = (r.L1(1e-2, mode="proximal"), r.GroupLasso(1e-2, mode="penalty"), r.MaxNorm(), Squared(1e-2))
    for regularizer in others:
        assert r.elastic_gradient(regularizer) is None, regularizer


def test_a_stack_skips_after_step_only_where_it_leaves_the_weights_as_they_are():
    """A stacked fit calls after_step only for members whose regularizer says it steps
    (steps_after): every built-in regularizer that says it does not leaves the weights
    unchanged, and one that says it does changes them; a subclass with its own after_step
    always steps."""
    from reglab import regularizers as r

    class Clipped(r.L2):
        def after_step(self, weights, lr):
            for weight in weights:
                weight.data.clamp_(-0.1, 0.1)

    built_in = [r.NoPenalty(1.0), r.MaxNorm(0.5)]
    for mode in ("penalty", "proximal"):
        for strength in (0.0, 0.3):
            built_in += [
                r.L1(strength, mode=mode),
                r.L2(strength, mode=mode),
                r.ElasticNet(strength, 0.4, mode=mode),
            ]
            built_in.append(r.GroupLasso(strength, mode=mode))
    torch.manual_seed(0)
    for regularizer in built_in:
        weight = torch.randn(4, 3, dtype=torch.float64)
        stepped = weight.clone()
        regularizer.after_step([stepped], lr=0.5)
        assert regularizer.steps_after() == (not torch.equal(stepped, weight)), regularizer
    assert Clipped(1e-3).steps_after() and Clipped(1e-3, mode="penalty").steps_after()


def _splitmix_reference(key: int, layer: int, draw: int, n: int) -> list[float]:
    """reglab.dropout's uniforms computed with Python integers (mod 2^64), by its docstring."""
    modulus, golden = 2**64, 0x9E3779B97F4A7C15

    def mix(z: int) -> int:
        z %= modulus
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % modulus
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % modulus
        return z ^ (z >> 31)

    stream = mix(mix(mix(key) + layer * golden) + draw * golden)
    return [(mix(stream + (e + 1) * golden) >> 11) * 2.0**-53 for e in range(n)]


def test_seeded_dropout_masks_are_a_function_of_seed_layer_and_draw_with_a_rate_per_member():
    from torch.func import functional_call, vmap

    from reglab.dropout import SeededDropout, uniforms

    for key, layer, draw in ((0, 0, 0), (42, 1, 7), (2**40 + 3, 3, 100_000)):
        assert uniforms(torch.tensor(key), layer, draw, (64,)).tolist() == _splitmix_reference(
            key, layer, draw, 64
        )
    u = uniforms(torch.tensor(7), 0, 0, (100_000,))
    assert abs(u.mean().item() - 0.5) < 0.005 and abs((u < 0.3).double().mean().item() - 0.3) < 0.005
    for channels, shape in ((False, (64, 100)), (True, (64, 32, 10))):
        layer = SeededDropout(0.5, channels)
        rates = torch.tensor([0.0, 0.3, 0.6, 0.3])
        keys = torch.tensor([1, 1, 1, 2])
        x = torch.ones(4, *shape)

        def forward(p, key, x, layer=layer):
            return functional_call(layer, {"p": p, "key": key}, (x,))

        out = vmap(forward, randomness="error")(rates, keys, x)  # no global random state inside
        dropped = [(out[i] == 0).float().mean().item() for i in range(4)]
        assert dropped[0] == 0 and torch.equal(out[0], x[0])
        assert abs(dropped[1] - 0.3) < 0.05 and abs(dropped[2] - 0.6) < 0.05
        kept = out[2][out[2] != 0]
        torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.4))
        assert not torch.equal(out[1], out[3])  # another seed, other masks
        if channels:  # whole channels: every position of a channel is kept or dropped together
            assert bool(((out[1] == 0).all(dim=2) | (out[1] != 0).all(dim=2)).all())
        alone = SeededDropout(0.3, channels)
        alone.key.fill_(1)
        assert torch.equal(alone(x[1]), out[1])  # the one-run layer draws the member's masks
        assert not torch.equal(alone(x[1]), out[1])  # the next draw: new masks
        layer.eval()
        assert torch.equal(vmap(forward, randomness="error")(rates, keys, x), x)


@pytest.mark.parametrize("model", ["mlp", "convnet"])
def test_batched_batch_norm_matches_torch_in_train_and_eval_mode(model, output_dir):
    """model=mlp: BatchNorm1d; model=convnet on digits' 8 x 8 images: BatchNorm2d (and 1d in
    its head). Each member's output and running statistics are its own nn.BatchNorm's."""
    from omegaconf import OmegaConf

    from reglab.stacked.fit import _settings
    from reglab.stacked.members import build_state
    from reglab.stacked.module import StackedModule
    from reglab.stacked.plan import stack_key

    members = members_of([[f"model={model}", "batchnorm=true", f"seed={s}"] for s in range(3)], output_dir)
    assert len({stack_key(OmegaConf.to_container(m.cfg, resolve=True)) for m in members}) == 1
    state = build_state(members)
    module = StackedModule(state, members, _settings(members, "test"))
    x = torch.stack([m.components.datamodule.tensors["train"][0][:16] for m in members])
    norm_types = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    norms = [
        [layer for layer in m.components.model.modules() if isinstance(layer, norm_types)] for m in members
    ]
    assert any(isinstance(n, torch.nn.BatchNorm2d) for n in norms[0]) == (model == "convnet")
    for training in (True, False, True):
        module.train(training)
        for m in members:
            m.components.model.train(training)
        stacked = module(x)
        for i, m in enumerate(members):
            torch.testing.assert_close(stacked[i], m.components.model(x[i]), rtol=1e-5, atol=1e-5)
    buffers = module.stacked_buffers()
    for i in range(len(members)):
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            stacked_stats = [b[i] for n, b in buffers.items() if n.endswith(name)]
            own = [getattr(norm, name) for norm in norms[i]]
            assert len(stacked_stats) == len(own) >= 1
            for mine, theirs in zip(stacked_stats, own, strict=True):
                torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
        assert int(norms[i][0].num_batches_tracked) == 2


def test_the_values_a_stack_is_planned_with_are_the_checked_configs(output_dir):
    """The values the door returns (checked_values), which the stacked launcher plans stacks
    with, are the checked config's own resolved values, knobs synced (model.dropout set
    directly makes dropout the same)."""
    from omegaconf import OmegaConf

    from reglab.config import checked_values, compose

    for overrides in (["model.dropout=0.3"], ["dropout=0.2", "model=mlp"], ["seed=4", "regularizer=l1"]):
        cfg = compose([*overrides, f"paths.output_dir={output_dir}"])
        values = checked_values(cfg)
        assert values == OmegaConf.to_container(cfg, resolve=True), overrides
        assert values["dropout"] == values["model"]["dropout"], overrides


def test_plan_groups_jobs_that_differ_in_stackable_knobs(output_dir):
    from omegaconf import OmegaConf

    from reglab.config import compose
    from reglab.stacked import plan

    def resolved(cfg):
        return OmegaConf.to_container(cfg, resolve=True)

    def key(*overrides):
        return plan.stack_key(resolved(compose([*overrides, f"paths.output_dir={output_dir}"])))

    base = key("seed=0", "regularizer=none")
    assert (
        key("seed=3", "regularizer=elastic", "regularizer.l1_ratio=0.2", "regularizer.mode=proximal") == base
    )
    assert key("dropout=0.3", "optimizer.lr=3e-3", "optimizer.weight_decay=1e-4") == base
    assert key("batchnorm=true") != base
    assert key("regularizer=group_lasso") != base
    assert key("optimizer=sgd") != base
    assert plan.stacks(["a"] * 10 + ["b"] * 2, max_members=4) == [
        [0, 1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
        [10, 11],
    ]

    def why(overrides):
        return plan.why_not_stackable(resolved(compose(overrides)))

    assert why(["+trainer.accumulate_grad_batches=2"]) is not None
    assert "regularizer" in why(["regularizer._target_=my.Reg"])
    assert "optimizer" in why(["optimizer=sgd", "+optimizer.maximize=true"])
    assert why(["model=convnet", "callbacks=fixed_budget", "optimizer=adamw"]) is None


def test_a_stack_larger_than_memory_is_refused_naming_max_members(output_dir, monkeypatch):
    from reglab.stacked import fit
    from reglab.stacked.members import build_state

    members = members_of([[f"seed={s}"] for s in range(2)], output_dir)
    monkeypatch.setattr(fit, "_available_ram", lambda: 2**20)
    with pytest.raises(ConfigError, match=r"hydra.launcher.max_members \(now 64\)"):
        fit.check_memory(build_state(members), members, 64)


# -- members against their sequential runs -----------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("batchnorm", [False, True])
def test_float64_members_have_their_sequential_runs_history_and_test_metrics(batchnorm, output_dir):
    """>= 4 members differing in seed, regularizer, strength and mode: each member's per-epoch
    val/loss equals its sequential run's to 1e-6 relative (measured: bit-identical), with the
    same best and stopped epochs and test metrics."""
    from reglab.stacked.api import run_stacked

    base = [
        *FLOAT64,
        "trainer.max_epochs=12",
        f"batchnorm={str(batchnorm).lower()}",
        f"paths.output_dir={output_dir}",
    ]
    jobs = [[*base, *job] for job in DIFFERING]
    stacked = [r.metrics for r in run_stacked(jobs, verbose=False)]
    histories = sorted((output_dir / "api").glob("*/*/*/fit_record.json"))
    assert len(histories) == len(jobs)
    import json

    import reglab

    long_enough = 0
    for job, result, record in zip(jobs, stacked, histories, strict=True):
        sequential = reglab.run(job, verbose=False)
        expected, history = sequential.metrics, sequential.history
        mine = json.loads(record.read_text())["history"]
        assert set(mine) == set(history)
        for a, b in zip(mine["val/loss"], history["val/loss"], strict=True):
            assert a == pytest.approx(b, rel=1e-6)
        long_enough += len(history["val/loss"]) >= 10
        for key in ("fit/epochs", "fit/best_epoch", "fit/stopped_early"):
            assert result[key] == expected[key], key
        for key, value in expected.items():
            if key.startswith(("test/", "best/", "gap/")):
                assert result[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
    assert long_enough >= 1 and sum(r["fit/stopped_early"] for r in stacked) >= 2  # stops and leaves


@pytest.mark.slow
def test_with_dropout_a_configuration_trains_identically_alone_in_any_stack_and_sequentially(output_dir):
    """Dropout 0.3 in float64: one configuration trained alone, first in one stack, in the middle
    of another (beside a member without dropout) and on the sequential path: the same history,
    best epoch and test metrics (its masks come from its own seed, reglab.dropout)."""
    import reglab
    from reglab.stacked.api import run_stacked

    base = [*FLOAT64, "dropout=0.3", "trainer.max_epochs=2", "model.hidden=[32]", "data.batch_size=128"]
    config = [*base, "seed=1", "regularizer=l1", "regularizer.strength=1e-3"]
    stacks = [
        [config],
        [config, [*base, "seed=2", "regularizer=l2"]],
        [
            [*base, "seed=5", "regularizer=elastic"],
            config,
            [*base, "seed=3", "regularizer=none", "dropout=0"],
        ],
    ]
    sequential = reglab.run([*config, f"paths.output_dir={output_dir / 'sequential'}"], verbose=False)
    for number, jobs in enumerate(stacks):
        folder = output_dir / f"stack{number}"
        results = run_stacked([[*job, f"paths.output_dir={folder}"] for job in jobs], verbose=False)
        mine = results[jobs.index(config)]
        for key, values in sequential.history.items():
            assert mine.history[key] == pytest.approx(values, rel=1e-12, abs=1e-15), (number, key)
        for key, value in sequential.metrics.items():
            if key.startswith(("test/", "best/", "gap/", "fit/best", "fit/epochs")):
                assert mine.metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-15), (number, key)


@pytest.mark.slow
def test_with_dropout_a_configuration_resumed_in_a_smaller_stack_trains_as_in_the_fresh_sweep(tmp_path):
    """Through the CLI, dropout 0.3 in float64: a sweep of three configurations trained fresh
    (one stack of 3), and the same sweep resumed after only its first configuration had
    finished (the other two then train as a stack of 2): the resumed configurations' test
    metrics and best validation losses are the fresh sweep's."""
    sweep = ["-m", "regularizer=l1,l2,elastic", "dropout=0.3", "trainer.max_epochs=3", "model.hidden=[16]"]
    sweep += ["+trainer.precision=64", "hydra/launcher=stacked"]
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    fresh.mkdir(), resumed.mkdir()
    assert run_cli(sweep, fresh).returncode == 0
    first = run_cli([*sweep[:1], "regularizer=l1", *sweep[2:]], resumed)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_cli([*sweep, "+resume=true"], resumed)
    assert again.returncode == 0, again.stderr[-3000:]

    def by_regularizer(output_dir):
        return {r.data.params["regularizer._target_"]: r for r in child_runs(output_dir)}

    runs, expected = by_regularizer(resumed), by_regularizer(fresh)
    assert set(runs) == set(expected) and len(runs) == 3
    stacks = {name: run.data.tags["reglab.stack_id"] for name, run in runs.items()}
    assert len(set(stacks.values())) == 2  # l1 alone in the first sweep, the two others together
    for name, run in runs.items():
        for key, value in expected[name].data.metrics.items():
            if key.startswith(("test/", "fit/best")):
                assert run.data.metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-15), (name, key)


@pytest.mark.slow
def test_on_a_tied_monitor_members_stop_and_keep_the_epochs_of_their_sequential_runs(output_dir):
    """Early stopping on val/acc (mode max: ties are common, a tie does not improve), min_delta
    per member, best weights on val/loss: each member's own rules see its values at full
    precision, so its stopped and best epochs, and the best score it saves (float64 to the last
    bits of the batched reductions, not the float32 of the history), are its sequential run's."""
    import reglab
    from reglab.stacked.api import run_stacked

    on_acc = ["callbacks.early_stopping.monitor=val/acc", "callbacks.early_stopping.mode=max"]
    base = [*FLOAT64, *on_acc, "optimizer.lr=3e-2", "model.hidden=[32]", "trainer.max_epochs=12"]
    base.append("data.batch_size=128")
    jobs = [
        [*base, "seed=0", "regularizer=none"],
        [*base, "seed=1", "regularizer=l2", "callbacks.early_stopping.min_delta=0.003"],
        [*base, "seed=2", "regularizer=elastic", "regularizer.strength=3e-3"],
    ]
    stacked = run_stacked([[*job, f"paths.output_dir={output_dir / 'stack'}"] for job in jobs], verbose=False)
    tied = 0
    for number, (job, mine) in enumerate(zip(jobs, stacked, strict=True)):
        theirs = reglab.run([*job, f"paths.output_dir={output_dir / str(number)}"], verbose=False)
        assert mine.history["val/acc"] == theirs.history["val/acc"], number
        for key in ("fit/epochs", "fit/best_epoch", "fit/stopped_early"):
            assert mine.metrics[key] == theirs.metrics[key], (number, key)
        saved = [torch.load(next((r.run_dir / "checkpoints").glob("*.ckpt"))) for r in (mine, theirs)]
        assert saved[0]["epoch"] == saved[1]["epoch"], number
        assert saved[0]["score"] == pytest.approx(saved[1]["score"], rel=1e-12), number  # float32: ~1e-8
        assert list(saved[0]["state_dict"]) == list(saved[1]["state_dict"]), number  # a RegularizedModule's
        for name, tensor in saved[1]["state_dict"].items():
            torch.testing.assert_close(saved[0]["state_dict"][name], tensor, rtol=1e-9, atol=1e-12)
        tied += len(set(theirs.history["val/acc"])) < len(theirs.history["val/acc"])
    assert tied >= 1 and sum(r.metrics["fit/stopped_early"] for r in stacked) >= 1


@pytest.mark.slow
def test_a_diverging_member_fails_with_its_sequential_runs_reason(output_dir):
    """Beside a healthy member, a member whose loss explodes fails alone, with the reason its
    sequential run raises (its own DivergenceGuard, the same rule, key and epoch)."""
    import json

    import reglab
    from reglab.errors import DivergedError
    from reglab.stacked.api import run_stacked

    base = [*FLOAT64, "model.hidden=[16]", "trainer.max_epochs=3", f"paths.output_dir={output_dir}"]
    jobs = [[*base, "optimizer.lr=1e-3"], [*base, "optimizer.lr=1e6"]]
    healthy, diverged = run_stacked(jobs, verbose=False)
    assert healthy.metrics and not diverged.metrics
    outcome = json.loads((diverged.run_dir / "outcome.json").read_text())
    with pytest.raises(DivergedError) as sequential:
        reglab.run(jobs[1], verbose=False)
    assert outcome["status"] == "FAILED" and str(sequential.value) in outcome["reason"]


# -- the launcher ---------------------------------------------------------------------------------
def _params(run) -> dict:
    return {k: v for k, v in run.data.params.items() if not k.startswith("logger.")}


@pytest.mark.slow
def test_stacked_launcher_records_each_member_as_the_basic_launcher_does(tmp_path, monkeypatch):
    """The same sweep with both launchers: one MLflow child run per job with equal params and
    metric names, tags reglab.engine / reglab.stack_id on stacked members; a job that cannot
    stack (accumulate_grad_batches=2) runs on its own in the same sweep; resume skips all."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    grid = ["regularizer=none,l1", "seed=0,1", "+trainer.accumulate_grad_batches=1,2", "trainer.max_epochs=3"]
    runs = {}
    for launcher in ("basic", "stacked"):
        out = tmp_path / launcher
        out.mkdir()
        done = run_cli(["-m", *grid, f"hydra/launcher={launcher}"], out)
        assert done.returncode == 0, done.stderr[-3000:]
        children = child_runs(out)
        runs[launcher] = {r.data.tags["reglab.overrides"].split(" paths.")[0]: r for r in children}
        if launcher == "stacked":
            said = done.stdout + done.stderr
            assert said.count("runs on its own (not stacked): trainer.accumulate_grad_batches=2") == 4
            parent = [r for r in all_runs(store_uri(out)) if r.data.tags.get("reglab.kind") == "sweep"][0]
            assert parent.info.status == "FINISHED"
    assert set(runs["basic"]) == set(runs["stacked"]) and len(runs["basic"]) == 8
    for job, basic in runs["basic"].items():
        stacked = runs["stacked"][job]
        assert stacked.info.status == basic.info.status == "FINISHED"
        assert _params(stacked) == _params(basic)
        assert set(stacked.data.metrics) == set(basic.data.metrics)
        engine = stacked.data.tags.get("reglab.engine")
        assert engine == ("stacked" if "accumulate_grad_batches=1" in job else None)
        assert ("reglab.stack_id" in stacked.data.tags) == (engine == "stacked")
        assert stacked.data.tags["reglab.config_hash"] == basic.data.tags["reglab.config_hash"]
    out = tmp_path / "stacked"
    again = run_cli(["-m", *grid, "hydra/launcher=stacked", "+resume=true"], out)
    assert again.returncode == 0, again.stderr[-3000:]
    children = child_runs(out)
    assert len(children) == 8  # nothing trained again


@pytest.mark.slow
def test_stacked_sweep_bad_value_fails_before_training_and_a_diverging_member_fails_alone(output_dir):
    bad = run_cli(
        ["-m", "hydra/launcher=stacked", "regularizer=l1", "regularizer.strength=1e-3,-1"], output_dir
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("reglab: error: regularizer.strength=-1")
    runs = all_runs(store_uri(output_dir))
    assert [r.info.status for r in runs] == ["FAILED"]  # the parent only; no job trained
    out = output_dir / "diverging"
    out.mkdir()
    done = run_cli(
        [
            "-m",
            "hydra/launcher=stacked",
            "optimizer.lr=1e-3,1e5",
            "trainer.max_epochs=3",
            "hydra.launcher.max_members=1",
        ],
        out,
    )
    assert done.returncode == 1
    children = {
        r.data.params["optimizer.lr"]: r for r in all_runs(store_uri(out)) if "optimizer.lr" in r.data.params
    }
    assert children["0.001"].info.status == "FINISHED"
    assert children["100000.0"].info.status == "FAILED"
    assert "diverged" in children["100000.0"].data.tags["reglab.failure_reason"]
    stacks = {r.data.tags["reglab.stack_id"] for r in children.values()}
    assert len(stacks) == 2  # max_members=1: one stack per job


@pytest.mark.slow
def test_with_an_executor_each_stack_is_one_submitted_job(output_dir):
    """hydra.launcher.executor=local: submitit's local executor runs one task per stack (the
    same code path as slurm), and every member is still its own FINISHED run."""
    done = run_cli(
        [
            "-m",
            "hydra/launcher=stacked",
            "hydra.launcher.executor=local",
            "hydra.launcher.max_members=2",
            "regularizer=none,l1",
            "seed=0,1",
            "trainer.max_epochs=2",
        ],
        output_dir,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    children = child_runs(output_dir)
    assert sorted(r.info.status for r in children) == ["FINISHED"] * 4
    stacks = {r.data.tags["reglab.stack_id"] for r in children}
    assert len(stacks) == 2
    submitted = list(output_dir.glob("multiruns/*/*/.submitit/*_submitted.pkl"))
    assert len(submitted) == 2  # one task per stack, not per run


def test_run_variations_trains_the_configs_the_overrides_would_compose(output_dir):
    """A variation sets values in one composed base: the same configs (hashes) and results as
    composing each job's overrides."""
    from reglab.pipeline import config_hash
    from reglab.stacked.api import run_stacked, run_variations

    base = ["logger=none", "trainer.max_epochs=2", "regularizer=elastic", f"paths.output_dir={output_dir}"]
    varied = [
        {"seed": 3, "regularizer.strength": 1e-3},
        {"seed": 4, "regularizer.l1_ratio": 0.2, "dropout": 0.0},
    ]
    composed = [
        ["seed=3", "regularizer.strength=1e-3"],
        ["seed=4", "regularizer.l1_ratio=0.2", "dropout=0.0"],
    ]
    by_values = run_variations(base, varied, verbose=False)
    by_overrides = run_stacked([[*base, *job] for job in composed], verbose=False)
    for a, b in zip(by_values, by_overrides, strict=True):
        assert config_hash(a.config) == config_hash(b.config)
        assert a.metrics["test/acc"] == b.metrics["test/acc"]
        assert a.history["val/loss"] == b.history["val/loss"]


@pytest.mark.slow
def test_float64_regression_members_with_scaled_targets_and_group_lasso_match(output_dir):
    """Regression (standardized targets: the TargetScale loss per member) and group lasso's
    proximal block steps: the same histories and test metrics as the sequential runs."""
    import reglab
    from reglab.stacked.api import run_stacked

    base = ["data=diabetes", "+trainer.precision=64", "trainer.max_epochs=8", "logger=none"]
    base.append(f"paths.output_dir={output_dir}")
    for jobs in (
        [
            [*base, "seed=0", "regularizer=l1"],
            [*base, "seed=1", "regularizer=l2", "regularizer.strength=1e-2"],
        ],
        [[*base, "seed=2", "regularizer=group_lasso"], [*base, "seed=3", "regularizer=group_lasso"]],
    ):
        for job, stacked in zip(jobs, run_stacked(jobs, verbose=False), strict=True):
            sequential = reglab.run(job, verbose=False)
            assert stacked.history["val/loss"] == pytest.approx(sequential.history["val/loss"], rel=1e-6)
            assert stacked.metrics["test/r2"] == pytest.approx(sequential.metrics["test/r2"], rel=1e-6)
