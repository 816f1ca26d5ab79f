"""Scripted Meta-World experts as TorchRL policies."""

from __future__ import annotations

import functools

import pytest
import torch
from tensordict import TensorDict

from vid2act.envs import MetaWorldExpert, make_env, make_expert_policy


@functools.lru_cache(maxsize=1)
def _reset_state() -> torch.Tensor:
    env = make_env("metaworld/door-close", seed=0, image_size=8)
    try:
        return env.reset()["observation"]
    finally:
        env.close()


def _states(*batch: int) -> torch.Tensor:
    """Plausible door-close states: a real reset state, jittered."""
    generator = torch.Generator().manual_seed(0)
    return _reset_state() + 0.05 * torch.randn(*batch, 39, generator=generator)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["door-close", "button-press", "reach", "drawer-close"])
def test_expert_succeeds_within_an_episode(metaworld_spy, task):
    """Each expert reaches ``success`` within 500 steps, acting through ``make_env``.

    Renders are faked (black frames): the experts read the state, and a 500-step episode of real
    64x64 renders would cost minutes on a CPU.
    """
    metaworld_spy(fake=True)
    env = make_env(f"metaworld/{task}", seed=1)
    try:
        td = env.rollout(500, make_expert_policy(f"metaworld/{task}"))
    finally:
        env.close()
    assert td.batch_size == (500,)
    assert td["next", "success"].any(), f"{task} expert never succeeded"


def test_batched_actions_match_single_rows_and_leave_the_input_alone():
    expert = MetaWorldExpert("metaworld/door-close")
    states = _states(2, 3)
    before = states.clone()
    actions = expert(states)
    # SawyerDoorCloseV3Policy adds an offset to a slice of its input in place: we must copy.
    assert torch.equal(states, before)
    assert actions.shape == (2, 3, 4) and actions.dtype == torch.float32
    assert actions.abs().max() <= 1
    rows = torch.stack([expert(s) for s in states.reshape(6, 39)])
    torch.testing.assert_close(actions.reshape(6, 4), rows)


def test_policy_reads_observation_and_writes_action_on_batched_tensordicts():
    policy = make_expert_policy("metaworld/door-close")
    td = TensorDict({"observation": _states(5)}, batch_size=[5])
    out = policy(td)
    assert out["action"].shape == (5, 4) and out["action"].dtype == torch.float32
    torch.testing.assert_close(out["action"], MetaWorldExpert("metaworld/door-close")(td["observation"]))


def test_noise_is_seeded_and_clipped():
    states = _states(64)
    clean = MetaWorldExpert("metaworld/door-close")(states)
    noisy = [MetaWorldExpert("metaworld/door-close", noise=0.5, seed=s)(states) for s in (1, 1, 2)]
    assert torch.equal(noisy[0], noisy[1]) and not torch.equal(noisy[0], noisy[2])
    assert not torch.equal(noisy[0], clean)
    assert noisy[0].abs().max() <= 1


def test_expert_through_the_collector():
    """Expert demonstrations use the same env and TorchRL Collector as any policy."""
    from torchrl.collectors import Collector

    env = make_env("metaworld/reach", seed=0)
    policy = make_expert_policy("metaworld/reach")
    collector = Collector(env, policy, frames_per_batch=8, total_frames=8)
    try:
        batch = next(iter(collector))
    finally:
        collector.shutdown()
        if not env.is_closed:
            env.close()
    assert batch["next", "pixels"].shape[-3:] == (3, 64, 64) and batch.numel() == 8
    torch.testing.assert_close(batch["action"], MetaWorldExpert("metaworld/reach")(batch["observation"]))


def test_errors():
    with pytest.raises(ValueError, match="RandomPolicy"):
        make_expert_policy("dmc/walker-walk")
    with pytest.raises(ValueError, match="unknown task"):
        make_expert_policy("metaworld/door-clos")
    with pytest.raises(ValueError, match="noise"):
        make_expert_policy("metaworld/reach", noise=-0.1)
    with pytest.raises(ValueError, match=r"\[\*B, 39\]"):
        MetaWorldExpert("metaworld/reach")(torch.zeros(2, 12))
