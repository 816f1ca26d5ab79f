"""The GPU-path knobs on a CPU: ``autocast=none`` changes no bit, ``bf16`` / ``fp16`` and ``compile=true``
update the same parts with the same metrics (shapes, keys, dtypes), and the Hydra config reaches the agent."""

from __future__ import annotations

import functools

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from tensordict import TensorDict
from torch import nn

from vid2act.agents import acceleration
from vid2act.agents.acceleration import UpdatePrecision, compile_modules
from vid2act.agents.dreamer import DreamerAgent
from vid2act.agents.schemas import register_configs
from vid2act.components.world_model import WorldModelConfig

register_configs()
A = 2


def _batch(b=2, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(b, t, 1, dtype=torch.bool)
    is_first[:, 0] = True
    flags = torch.zeros(b, t, 1, dtype=torch.bool)
    return TensorDict({
        "pixels": torch.randint(0, 256, (b, t, 3, 64, 64), dtype=torch.uint8, generator=g),
        "prev_action": torch.rand(b, t, A, generator=g) * 2 - 1, "reward": torch.rand(b, t, 1, generator=g),
        "is_first": is_first, "is_last": flags.clone(), "is_terminal": flags.clone(),
    }, [b, t])


def _agent(**kwargs) -> DreamerAgent:
    torch.manual_seed(0)
    return DreamerAgent(WorldModelConfig.from_preset("tiny"), A, horizon=3, **kwargs)


def _train(agent, updates=2, update=None):
    metrics = []
    for step in range(updates):
        torch.manual_seed(step)
        metrics.append((update or DreamerAgent.update)(agent, _batch(seed=step)))
    return metrics


def _float32_update(agent: DreamerAgent, batch: TensorDict) -> dict[str, float]:
    """``DreamerAgent.update`` as written before the autocast / compile knobs: the float32 reference."""
    def step(name, loss, params):
        opt = agent.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(list(params), agent.grad_clip)
        opt.step()
        return float(norm)

    batch = batch.to(agent.device)
    metrics: dict[str, float] = {}
    model_out = agent.model_loss(batch)
    model_terms = {k: v for k, v in model_out.items() if k.startswith("loss_")}
    model_terms.update(agent.extra_model_losses(batch))
    metrics["grad_norm_model"] = step("model", sum(model_terms.values()), agent.model_parameters())
    metrics.update({k: float(v.detach()) for k, v in model_out.items() if not k.startswith("loss_") and v.numel() == 1})
    metrics.update({k: float(v.detach()) for k, v in model_terms.items()})
    actor_out, imagined = agent.actor_loss(batch)
    metrics["grad_norm_actor"] = step("actor", actor_out["loss_actor"], agent.actor.parameters())
    value_out = agent.value_loss(imagined)
    metrics["grad_norm_value"] = step("value", value_out["loss_value"], agent.value.parameters())
    agent.target_updater.step()
    for out in (actor_out, value_out):
        metrics.update({k: float(v.detach()) for k, v in out.items() if v.numel() == 1})
    return metrics


def _assert_same_parameters(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name


def test_autocast_none_is_bit_identical_to_the_float32_update():
    fast, reference = _agent(autocast="none"), _agent()
    assert fast.precision.dtype is None and fast.precision.scaler is None
    assert _train(fast) == _train(reference, update=_float32_update)
    _assert_same_parameters(fast, reference)
    assert "grad_scaler" not in fast.state_dict()  # checkpoints as before


@pytest.mark.parametrize("autocast, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_mixed_precision_update_trains_every_part_with_the_same_metrics(autocast, dtype):
    reference, mixed = _agent(), _agent(autocast=autocast)
    assert mixed.precision.dtype is dtype and (mixed.precision.scaler is not None) == (autocast == "fp16")
    parts = ("world_model", "actor", "value")
    before = {k: [p.detach().clone() for p in getattr(mixed, k).parameters()] for k in parts}
    # fp16: the GradScaler starts at 2^16 and halves its scale after each update whose gradients overflowed
    # (that optimiser's step is skipped, its grad norm inf): a few updates before every part steps
    updates = 2 if autocast == "bf16" else 12
    expected, got = _train(reference)[-1], _train(mixed, updates=updates)[-1]
    assert got.keys() == expected.keys()
    assert all(torch.isfinite(torch.tensor(v)) for k, v in got.items() if k.startswith("loss_")), got
    assert all(p.dtype == torch.float32 for p in mixed.parameters())  # only the forward passes are cast
    for k in parts:
        assert any(not torch.equal(p0, p) for p0, p in zip(before[k], getattr(mixed, k).parameters())), k
    # the same world model computes in the autocast dtype: same shapes, lower precision
    batch = _batch()
    with mixed.precision.autocast():
        out = mixed.world_model.compute(batch["pixels"], batch["prev_action"], batch["is_first"])
    plain = mixed.world_model.compute(batch["pixels"], batch["prev_action"], batch["is_first"])
    assert out["reco_pixels"].dtype is dtype and out["reco_pixels"].shape == plain["reco_pixels"].shape
    if autocast == "fp16":  # the loss scale adapted, is part of the checkpoint and comes back
        assert mixed.precision.scaler.get_scale() < 2.0**16
        clone = _agent(autocast="fp16")
        clone.load_state_dict(mixed.state_dict())
        assert clone.precision.scaler.get_scale() == mixed.precision.scaler.get_scale()


def test_unknown_autocast_fails_before_building():
    with pytest.raises(ValueError, match="autocast must be one of"):
        _agent(autocast="fp8")
    with pytest.raises(ValueError, match="autocast must be one of"):
        UpdatePrecision("float16", "cpu")


def test_compile_traces_the_hot_modules_and_changes_no_number(monkeypatch):
    """``compile=True`` with the ``eager`` backend (dynamo's graph capture without code generation, fast
    on a CPU): the update's numbers and the checkpoint's keys are those of the plain agent."""
    monkeypatch.setattr(acceleration, "compile_modules", functools.partial(compile_modules, backend="eager"))
    plain, compiled = _agent(), _agent(compile=True)
    hot = compiled.hot_modules()
    assert len(hot) == 7 and all(m._compiled_call_impl is not None for m in hot if m is not None)
    assert plain.value_loss.target_value_network is not None  # the target critic stays a plain module
    assert compiled.state_dict()["modules"].keys() == plain.state_dict()["modules"].keys()
    assert _train(compiled) == _train(plain)
    _assert_same_parameters(compiled, plain)


def test_compile_modules_with_inductor_matches_eager():
    """The real backend on one tiny MLP (seconds, not the minutes of the whole agent on a CPU)."""
    from torchrl.modules import MLP

    torch.manual_seed(0)
    eager, fast = MLP(in_features=8, out_features=2, depth=2, num_cells=16), MLP(in_features=8, out_features=2,
                                                                                depth=2, num_cells=16)
    fast.load_state_dict(eager.state_dict())
    assert compile_modules([fast, None, fast]) == 1
    x = torch.randn(5, 8)
    eager(x).square().sum().backward()
    fast(x).square().sum().backward()
    for p, q in zip(eager.parameters(), fast.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6)
    assert list(fast.state_dict()) == list(eager.state_dict())


def test_the_train_config_reaches_the_agent_and_old_run_configs_turn_the_knobs_off(monkeypatch):
    from vid2act.agents.train import build_agent

    monkeypatch.setattr(acceleration, "compile_modules", functools.partial(compile_modules, backend="eager"))
    with initialize_config_module(config_module="vid2act.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=["model=tiny", "logger=csv", "autocast=bf16", "compile=true",
                                                      "compile_mode=default"])
        default = compose(config_name="train", overrides=["model=tiny", "logger=csv"])
        with pytest.raises(Exception, match="compile"):  # typed: a bool
            compose(config_name="train", overrides=["compile=maybe"])
    assert default.compile is False and default.autocast == "none" and default.compile_mode is None
    agent = build_agent(cfg, A, 64, torch.device("cpu"))
    assert agent.precision.dtype is torch.bfloat16
    assert agent.world_model.encoder._compiled_call_impl is not None
    assert all(torch.isfinite(torch.tensor(v)) for v in _train(agent, updates=1)[-1].values())
    old = OmegaConf.to_container(default, resolve=True)
    for key in ("compile", "compile_mode", "autocast"):  # a run config.yaml written before the knobs
        del old[key]
    agent = build_agent(OmegaConf.create(old), A, 64, torch.device("cpu"))
    assert agent.precision.dtype is None and agent.world_model.encoder._compiled_call_impl is None


def test_a_resume_may_switch_the_knobs_and_accepts_run_configs_written_before_them():
    from vid2act.agents.train import resume_changes

    with initialize_config_module(config_module="vid2act.configs", version_base="1.3"):
        saved = OmegaConf.to_container(compose(config_name="train", overrides=["logger=csv"]), resolve=True)
        current = OmegaConf.to_container(compose(config_name="train", overrides=["logger=csv", "autocast=bf16"]),
                                         resolve=True)
    assert resume_changes(saved, current) == {"autocast": ("none", "bf16")}
    for key in ("compile", "compile_mode", "autocast"):
        del saved[key]
    assert set(resume_changes(saved, current)) == {"compile", "autocast"}  # recorded, not refused
