"""Reuse ``DistillationLoss`` inside another TorchRL agent: model-free SAC on DMC pixels + Vid2Act distillation.

The agent is plain TorchRL: a small conv encoder shared by the actor (``ProbabilisticActor`` + ``TanhNormal``)
and the twin Q-networks (``ValueOperator``), trained by ``torchrl.objectives.SACLoss`` with a ``SoftUpdate``
target. Vid2Act's ``DistillationLoss`` (Eq. 3-4) is added as one more term: its student feature is the SAC
encoder's output on ``[B, T]`` sequences, renamed with ``set_keys(feature="sac_embedding")``; its teacher
features come from a frozen ``TeacherBank`` filtering the same frames, reading the TorchRL rollout's own
``action`` and ``is_init`` keys (``set_keys(action="action", is_init="is_init")``). The similarity weights
learn which teacher's features the encoder should match. One Adam step on ``SAC losses + loss_distill`` per
update. Distillation adds five lines to the SAC agent (two of them extend a SAC line), marked ``# + distill``.

Data: real env steps of a random policy (TorchRL ``Collector``) in a ``ReplayBuffer`` whose ``SliceSampler``
draws ``B`` slices of ``T`` consecutive steps within trajectories, reshaped to ``[B, T]``.

Note: TorchRL's ``SACLoss`` expands parameters shared with the actor into the Q ensemble *detached*, so the
shared encoder is trained by the actor and distillation terms (not by the Q loss).

Run (``teachers.pt`` from ``python -m vid2act.agents.pretrain``; without it an untrained bank is used)::

    python -m vid2act.agents.examples.distill_into_sac --env dmc/cartpole-balance --updates 100
    python -m vid2act.agents.examples.distill_into_sac --teacher outputs/pretrain/teachers.pt
"""
from __future__ import annotations

import argparse

import torch
from tensordict.nn import NormalParamExtractor, TensorDictModule, TensorDictSequential
from torch import nn
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, SliceSampler, TensorDictReplayBuffer
from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator
from torchrl.objectives import SACLoss, SoftUpdate

from vid2act.components.losses import DistillationLoss
from vid2act.components.transfer import TeacherBank
from vid2act.components.world_model import WorldModelConfig
from vid2act.envs import make_env


class PixelEncoder(nn.Module):
    """uint8 frames ``[*B, 3, 64, 64]`` -> ``[*B, E]`` (any leading batch dims)."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 4, 2), nn.ReLU(), nn.Conv2d(16, 32, 4, 2), nn.ReLU(),
                                 nn.Conv2d(32, 32, 4, 2), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 6 * 6, out),
                                 nn.LayerNorm(out), nn.Tanh())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float() / 255.0 - 0.5
        return self.net(x.reshape(-1, *x.shape[-3:])).reshape(*x.shape[:-3], -1)


def main() -> None:
    """Parse the flags, collect random-policy data, then run ``--updates`` SAC + distillation steps."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="dmc/cartpole-balance")
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--env-steps", type=int, default=200, help="random-policy env steps collected before the updates")
    p.add_argument("--teacher", default=None, help="teachers.pt of vid2act.agents.pretrain (default: untrained bank)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=8)
    args = p.parse_args()
    torch.manual_seed(0)
    env = make_env(args.env, seed=0, max_episode_steps=50)
    A, E = env.action_spec.shape[-1], 50

    if args.teacher:
        teachers = TeacherBank.from_checkpoint(args.teacher)
    else:
        print("WARNING: no --teacher given, using an UNTRAINED 2-teacher bank (shows the wiring, not the transfer)")
        untrained = WorldModelConfig.from_preset("tiny").build(action_dim=A, label_dim=2, reward_head=False)
        teachers = TeacherBank(untrained, source_tasks=["untrained_0", "untrained_1"])

    # --- SAC: shared encoder -> tanh-normal actor and twin Q(s, a) ---------------------------------
    encoder = TensorDictModule(PixelEncoder(E), in_keys=["pixels"], out_keys=["sac_embedding"])
    actor_head = TensorDictModule(nn.Sequential(MLP(in_features=E, out_features=2 * A, num_cells=[256, 256]),
                                                NormalParamExtractor()),
                                  in_keys=["sac_embedding"], out_keys=["loc", "scale"])
    actor = ProbabilisticActor(TensorDictSequential(encoder, actor_head), in_keys=["loc", "scale"],
                               spec=env.action_spec, distribution_class=TanhNormal,
                               distribution_kwargs={"low": -1.0, "high": 1.0}, return_log_prob=True)
    q_head = ValueOperator(MLP(in_features=E + A, out_features=1, num_cells=[256, 256]),
                           in_keys=["sac_embedding", "action"])
    sac_loss = SACLoss(actor, TensorDictSequential(encoder, q_head), num_qvalue_nets=2, action_spec=env.action_spec)
    sac_loss.make_value_estimator(gamma=0.99)
    target_updater = SoftUpdate(sac_loss, tau=0.005)

    # --- Vid2Act distillation of the teachers into the SAC encoder --------------------------------
    teachers.set_keys(action="action", is_init="is_init")  # + distill: read the TorchRL rollout's keys
    # + distill: f_distill and f_weight sized for the bank; the student feature is the SAC encoder's output
    distill_loss = DistillationLoss.from_teachers(teachers, student_dim=E, feature_key="sac_embedding")
    optim = torch.optim.Adam([*sac_loss.parameters(), *distill_loss.parameters()], lr=3e-4)  # + distill

    # --- data: random-policy env steps, sampled as [B, T] slices within trajectories ---------------
    buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(args.env_steps),
                                    sampler=SliceSampler(slice_len=args.seq_len, traj_key=("collector", "traj_ids"),
                                                         strict_length=True),
                                    batch_size=args.batch_size * args.seq_len)
    collector = Collector(env, None, frames_per_batch=min(50, args.env_steps), total_frames=args.env_steps)
    for batch in collector:  # policy=None: TorchRL's RandomPolicy on the env's action spec
        buffer.extend(batch)
    collector.shutdown()
    print(f"collected {len(buffer)} env steps of {args.env} (action dim {A})")

    for i in range(1, args.updates + 1):
        batch = buffer.sample().reshape(args.batch_size, args.seq_len)  # [B, T] TorchRL transitions
        sac = sac_loss(batch.reshape(-1))
        # the teachers write "teacher_feature" [B, T, N, F_t], filtering o_t with a_{t-1} (each slice starts
        # a fresh filter); the encoder writes "sac_embedding" [B, T, E] (with grad): the distillation student
        distill = distill_loss(teachers(encoder(batch)))  # + distill
        loss = sac["loss_actor"] + sac["loss_qvalue"] + sac["loss_alpha"] + distill["loss_distill"]  # + distill
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        target_updater.step()
        if i == 1 or i % 10 == 0 or i == args.updates:
            w = distill["similarity_weights"].tolist()
            weights = " ".join(f"{t}={x:.3f}" for t, x in zip(teachers.source_tasks, w))
            print(f"update {i:4d} | loss_actor {sac['loss_actor'].item():.3f} "
                  f"loss_qvalue {sac['loss_qvalue'].item():.3f} loss_alpha {sac['loss_alpha'].item():.3f} "
                  f"loss_distill {distill['loss_distill'].item():.3f} | similarity {weights}")
    env.close()
    print(f"done: {args.updates} updates, final loss {loss.item():.3f}, "
          f"loss_distill {distill['loss_distill'].item():.3f}, alpha {sac['alpha'].item():.4f}")


if __name__ == "__main__":
    main()
