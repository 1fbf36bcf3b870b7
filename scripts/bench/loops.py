"""The loops reglab's fit is compared with: a hand-written PyTorch loop doing the same work,
that loop driving reglab's ``RegularizedModule``, and a minimal ``LightningModule``."""

from __future__ import annotations

from pathlib import Path
from time import perf_counter


def hand_loop(cfg, data, epochs: int) -> tuple[float, float, int]:
    """A minimal PyTorch loop doing what reglab's fit does; returns (seconds, final val
    loss, optimizer steps). Same init (seeded like reglab.pipeline.train), same batch
    order (InMemoryBatches: randperm from a generator seeded with data.seed, a trailing
    single-sample batch skipped), same L1 penalty (as reglab applies it: its sub-gradient
    added to the gradients after backward, its value computed once per epoch), same
    per-epoch validation pass."""
    import torch
    import torch.nn.functional as F

    from reglab.build import build_model

    x, y = data.tensors["train"]
    xv, yv = data.tensors["val"]
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data)
    weights = [p for p in model.parameters() if p.ndim >= 2]
    strength = float(cfg.regularizer.strength)
    n, b, eb = len(x), int(cfg.data.batch_size), int(cfg.data.eval_batch_size)
    full, rest = divmod(n, b)
    n_batches = full + (1 if rest > 1 else 0)
    generator = torch.Generator().manual_seed(int(cfg.data.seed))
    val_loss = float("nan")
    started = perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg.optimizer.lr))
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        for i in range(n_batches):
            index = order[i * b : (i + 1) * b]
            xb, yb = x.index_select(0, index), y.index_select(0, index)
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                grads = [w.grad for w in weights]
                torch._foreach_add_(grads, torch._foreach_sign(weights), alpha=strength)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            penalty = strength * torch.stack(torch._foreach_norm(weights, 1)).sum()
            sums = torch.zeros(2)
            for start in range(0, len(xv), eb):
                out, target = model(xv[start : start + eb]), yv[start : start + eb]
                sums += torch.stack(
                    (F.cross_entropy(out, target, reduction="sum"), (out.argmax(1) == target).sum().float())
                )
            val_loss, _ = torch.stack((sums[0] / len(xv), penalty)).tolist()
    return perf_counter() - started, val_loss, epochs * n_batches


def module_loop(cfg, data, epochs: int) -> float:
    """The hand loop driving reglab's RegularizedModule (training_step with its penalty and
    epoch sums, configure_optimizers' two parameter groups, after_step, validation_step with
    its torchmetrics) without Lightning: reglab's own per-step cost."""
    import torch
    from hydra.utils import instantiate

    from reglab.build import build_model
    from reglab.module import RegularizedModule

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data)
    module = RegularizedModule(
        model, instantiate(cfg.regularizer), instantiate(cfg.optimizer), data.task, data.n_outputs
    )
    optimizer = module.configure_optimizers()
    train, val = data.train_dataloader(), data.val_dataloader()
    lr = optimizer.param_groups[0]["lr"]
    started = perf_counter()
    for _ in range(epochs):
        module.train()
        for i, batch in enumerate(train):
            loss = module.training_step(batch, i)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            module.on_before_optimizer_step(optimizer)
            optimizer.step()
            module.regularizer.after_step(module.penalized, lr)
        module.eval()
        with torch.no_grad():
            for i, batch in enumerate(val):
                module.validation_step(batch, i)
            values = module.val_metrics.compute()
            module.val_metrics.reset()
            torch.stack([v.float() for v in values.values()]).tolist()
    return perf_counter() - started


def _minimal_module(model, strength: float, lr: float):
    """A LightningModule with the hand loop's step, penalty and validation loss."""
    import lightning as L
    import torch
    import torch.nn.functional as F

    class Minimal(L.LightningModule):
        def __init__(self, model):
            super().__init__()
            self.model = model
            self.penalized = [p for p in model.parameters() if p.ndim >= 2]
            self.val_sum = torch.zeros(2)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.model(x), y)

        @torch.no_grad()
        def on_before_optimizer_step(self, optimizer):
            grads = [w.grad for w in self.penalized]
            torch._foreach_add_(grads, torch._foreach_sign(self.penalized), alpha=strength)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            out = self.model(x)
            self.val_sum += torch.stack(
                (F.cross_entropy(out, y, reduction="sum"), (out.argmax(1) == y).sum().float())
            )

        def on_validation_epoch_end(self):
            self.val_sum.tolist()
            self.val_sum.zero_()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=lr)

    return Minimal(model)


def minimal_lightning(cfg, data, epochs: int) -> float:
    """A minimal LightningModule (the hand loop's step, penalty and validation loss) fitted by
    a Trainer built from the same ``trainer`` config: Lightning's own per-step cost."""
    import torch
    from hydra.utils import instantiate

    from reglab.build import build_model

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data)
    trainer = instantiate(
        cfg.trainer,
        max_epochs=epochs,
        logger=False,
        callbacks=[],
        enable_checkpointing=False,
        default_root_dir=str(Path(cfg.paths.output_dir) / "minimal"),
    )
    module = _minimal_module(model, float(cfg.regularizer.strength), float(cfg.optimizer.lr))
    started = perf_counter()
    trainer.fit(module, train_dataloaders=data.train_dataloader(), val_dataloaders=data.val_dataloader())
    return perf_counter() - started
