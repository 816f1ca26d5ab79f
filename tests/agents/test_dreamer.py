"""DreamerAgent: one update trains all three parts, its checkpoint round-trips, the open-loop diagnostic."""
import pytest
import torch
from tensordict import TensorDict

from vid2act.agents.dreamer import DreamerAgent
from vid2act.components.world_model import WorldModelConfig

A = 2


def _batch(b=2, t=6, seed=0):
    """Dreamer rows ``[b, t]`` of random frames, one episode start per sequence."""
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(b, t, 1, dtype=torch.bool)
    is_first[:, 0] = True
    prev_action = torch.rand(b, t, A, generator=g) * 2 - 1
    prev_action[:, 0] = 0
    flags = torch.zeros(b, t, 1, dtype=torch.bool)
    return TensorDict({
        "pixels": torch.randint(0, 256, (b, t, 3, 64, 64), dtype=torch.uint8, generator=g),
        "prev_action": prev_action, "reward": torch.rand(b, t, 1, generator=g), "is_first": is_first,
        "is_last": flags.clone(), "is_terminal": flags.clone(), "success": flags.clone(),
    }, [b, t])


@pytest.fixture(params=["trunc_normal", "tanh_normal"])
def agent(request):
    torch.manual_seed(0)
    return DreamerAgent(WorldModelConfig.from_preset("tiny"), A, horizon=3, actor_dist=request.param)


def test_update_trains_world_model_actor_and_critic(agent):
    parts = {"model": agent.world_model, "actor": agent.actor, "value": agent.value}
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in parts.items()}
    metrics = agent.update(_batch())
    for name in ("loss_model_reco", "loss_model_kl", "loss_model_reward", "loss_actor", "loss_value",
                 "grad_norm_model", "grad_norm_actor", "grad_norm_value"):
        assert name in metrics and torch.isfinite(torch.tensor(metrics[name])), name
    for name, module in parts.items():
        assert any(not torch.equal(p0, p) for p0, p in zip(before[name], module.parameters())), name


def test_state_dict_round_trip_includes_optimisers(agent):
    agent.update(_batch())
    clone = DreamerAgent(WorldModelConfig.from_preset("tiny"), A, horizon=3, actor_dist=agent.actor_dist)
    clone.load_state_dict(agent.state_dict())
    for (name, p), q in zip(agent.named_parameters(), clone.parameters()):
        assert torch.equal(p, q), name
    assert clone.optimizers["model"].state_dict()["state"].keys() == agent.optimizers["model"].state_dict()["state"].keys()


def test_save_open_loop_writes_png_and_clamps_context(agent, tmp_path):
    path = agent.save_open_loop(_batch(b=3, t=6), tmp_path / "ol.png", sequences=2, context=5)
    assert path.stat().st_size > 0
    # a batch shorter than the context: the posterior sees T - 1 frames, one is predicted open loop
    assert agent.save_open_loop(_batch(t=3), tmp_path / "short.png", context=5).stat().st_size > 0
    with pytest.raises(ValueError, match="T >= 2"):
        agent.save_open_loop(_batch(t=1), tmp_path / "bad.png")


def test_update_without_actor_log_prob_or_per_tensor_adam_is_unchanged(agent):
    """Skipping the unused log-probability (``reinforce_mix = 0``) and Adam's batched ``foreach`` kernels
    change no number: two updates give the same parameters as an agent that computes the log-probability
    at every imagined step and steps Adam one tensor at a time."""
    assert agent.actor.module[-1].return_log_prob is False and agent.optimizers["model"].defaults["foreach"] is True
    torch.manual_seed(0)
    slow = DreamerAgent(WorldModelConfig.from_preset("tiny"), A, horizon=3, actor_dist=agent.actor_dist)
    slow.actor.module[-1].return_log_prob = True
    for name, opt in slow.optimizers.items():
        slow.optimizers[name] = torch.optim.Adam(opt.param_groups[0]["params"], lr=opt.defaults["lr"],
                                                 eps=opt.defaults["eps"], foreach=False)
    for (name, p), q in zip(agent.named_parameters(), slow.parameters()):
        assert torch.equal(p, q), name
    for step in range(2):
        for learner in (agent, slow):
            torch.manual_seed(step)
            learner.update(_batch(seed=step))
    for (name, p), q in zip(agent.named_parameters(), slow.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}: {m}")


def _mid_episode_batch(seed=0):
    """Sequences sampled inside episodes: row 0 is no episode start and carries a real previous action."""
    batch = _batch(seed=seed)
    batch["is_first"][:, 0] = False
    batch["prev_action"][:, 0] = torch.tensor([0.7, -0.4])
    return batch


def _twin_agents():
    agents = []
    for flag in (True, False):
        torch.manual_seed(0)
        agents.append(DreamerAgent(WorldModelConfig.from_preset("tiny"), A, horizon=3, first_row_is_first=flag))
    return agents


def _update(agent, batch):
    torch.manual_seed(7)
    return agent.update(batch)


def test_first_row_is_first_equals_marking_row_0_by_hand():
    """first_row_is_first changes the update only through is_first at row 0 (the RSSM then zeroes that
    row's prev_action): it equals the plain agent fed the batch with is_first[:, 0] = True, and changes
    nothing on a batch whose rows 0 already start episodes."""
    flagged, plain = _twin_agents()
    assert flagged.first_row_is_first and not plain.first_row_is_first
    batch = _mid_episode_batch()
    by_hand = batch.clone()
    by_hand["is_first"][:, 0] = True
    flags_before = batch["is_first"].clone()
    got, want = _update(flagged, batch), _update(plain, by_hand)
    assert got == want
    for (name, p), q in zip(flagged.named_parameters(), plain.parameters()):
        assert torch.equal(p, q), name
    # the caller's batch is left alone: same flag tensor and values, no model outputs written into it
    assert torch.equal(batch["is_first"], flags_before) and not batch["is_first"][:, 0].any()
    assert "belief" not in batch.keys()
    # on episode-start rows the option is a no-op; on mid-episode rows it changes the loss
    flagged, plain = _twin_agents()
    assert _update(flagged, _batch(seed=1)) == _update(plain, _batch(seed=1))
    flagged, plain = _twin_agents()
    got, plain_out = _update(flagged, _mid_episode_batch()), _update(plain, _mid_episode_batch())
    assert got["loss_model_kl"] != plain_out["loss_model_kl"] or got["loss_model_reco"] != plain_out["loss_model_reco"]


def test_mark_first_rows_copies_the_flags():
    agent = DreamerAgent(WorldModelConfig.from_preset("tiny"), A, horizon=3, first_row_is_first=True)
    batch = _mid_episode_batch()
    marked = agent.mark_first_rows(batch)
    assert marked is not batch and marked["is_first"].data_ptr() != batch["is_first"].data_ptr()
    assert marked["is_first"][:, 0].all() and torch.equal(marked["is_first"][:, 1:], batch["is_first"][:, 1:])
    assert marked["pixels"].data_ptr() == batch["pixels"].data_ptr()  # other entries are shared, not copied
    assert not batch["is_first"][:, 0].any()
