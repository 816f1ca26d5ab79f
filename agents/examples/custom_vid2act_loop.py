"""Compose the components in your own script: a Vid2Act training loop without our trainer or Hydra.

Everything the packaged trainer (``vid2act.agents.train``) hides is written out top to bottom here:
a DMC pixel env (``make_env``), a TorchRL ``Collector`` driven by the recurrent acting policy, the
``EpisodeWriter`` turning collector batches into Dreamer rows of a sequence replay buffer, the frozen
``TeacherBank``, and the student's losses stepped by hand:

1. world model + distillation (paper Eq. 5): ``WorldModelLoss`` + ``DistillationLoss`` (``DistillHead``
   ``f_distill`` and ``SimilarityWeights`` ``f_weight``, Eq. 3-4) on the teachers' features;
2. actor in imagination (Eq. 8): ``ImaginationActorLoss``;
3. critic on the same imagined trajectory: ``ImaginationValueLoss`` (+ its slow target copy).

The action-replay guidance (Eq. 6-7) needs the teachers' offline source datasets and is left out
(the ``no_guidance`` ablation); ``Vid2ActAgent`` adds it. While acting, ``TeacherTaskSelector`` filters
every frame with the teachers too and writes the similarity weights of each env step.

Run (``teachers.pt`` from ``python -m vid2act.agents.pretrain``; without it an untrained bank is used)::

    python -m vid2act.agents.examples.custom_vid2act_loop --env dmc/reacher-easy --env-steps 1000
    python -m vid2act.agents.examples.custom_vid2act_loop --teacher outputs/pretrain/teachers.pt --device cuda
"""
from __future__ import annotations

import argparse

import torch
from torch import nn
from torchrl.collectors import Collector

from vid2act.components.behavior import make_actor, make_value_model
from vid2act.components.behavior.acting import RecurrentPolicy
from vid2act.components.data.episode_writer import EpisodeWriter, make_online_buffer
from vid2act.components.losses import DistillationLoss, ImaginationActorLoss, ImaginationValueLoss, WorldModelLoss
from vid2act.components.transfer import DistillHead, SimilarityWeights
from vid2act.components.transfer.acting import TeacherTaskSelector
from vid2act.components.transfer.teacher_bank import TeacherBank
from vid2act.components.world_model import WorldModelConfig
from vid2act.envs import make_env

def main() -> None:
    """Parse the flags, build env, teachers, student and losses, then collect and update until the budget."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="dmc/reacher-easy")
    p.add_argument("--env-steps", type=int, default=1000, help="total env steps, random prefill included")
    p.add_argument("--teacher", default=None, help="teachers.pt of vid2act.agents.pretrain (default: untrained bank)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--episode-steps", type=int, default=100, help="env steps per episode (truncation)")
    p.add_argument("--frames-per-batch", type=int, default=50)
    p.add_argument("--prefill", type=int, default=100, help="random-policy env steps before the first update")
    p.add_argument("--updates-per-batch", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=16)
    args = p.parse_args()
    if args.episode_steps + 1 < args.seq_len:
        p.error("--seq-len must be <= --episode-steps + 1 (replay sequences stay within one episode)")
    device = torch.device(args.device)
    torch.manual_seed(0)

    # --- env: 64x64 pixels, action repeat 2, short episodes ----------------------------------------
    env = make_env(args.env, seed=0, max_episode_steps=args.episode_steps)
    A = env.action_spec.shape[-1]

    # --- the frozen teachers -----------------------------------------------------------------------
    if args.teacher:
        teachers = TeacherBank.from_checkpoint(args.teacher, map_location=device)
    else:
        print("WARNING: no --teacher given, using an UNTRAINED 2-teacher bank (shows the wiring, not the transfer)")
        untrained = WorldModelConfig.from_preset("tiny").build(action_dim=A, label_dim=2, reward_head=False)
        teachers = TeacherBank(untrained, source_tasks=["untrained_0", "untrained_1"])
    teachers.to(device)
    N, F_t = teachers.num_teachers, teachers.feature_dim

    # --- the student: DreamerV2 world model, actor, critic, and Vid2Act's f_distill / f_weight ------
    cfg = WorldModelConfig.from_preset("tiny")
    world_model = cfg.build(action_dim=A, reward_head=True)
    F_s = world_model.feature_dim
    actor = make_actor(F_s, A, hidden=cfg.mlp_units, layers=cfg.mlp_layers)
    value = make_value_model(F_s, hidden=cfg.mlp_units, layers=cfg.mlp_layers)
    distill_head, similarity = DistillHead(F_t, F_s), SimilarityWeights(F_t, F_s, num_teachers=N)
    nn.ModuleList([world_model, actor, value, distill_head, similarity]).to(device)

    # --- the losses (TorchRL LossModules) and one Adam per part ------------------------------------
    model_loss = WorldModelLoss(world_model)
    distill_loss = DistillationLoss(distill_head, similarity, alpha=1.0)
    value_loss = ImaginationValueLoss(value)
    actor_loss = ImaginationActorLoss(actor, value_loss.target_value_network, world_model, imagination_horizon=15)
    target_updater = value_loss.make_target_updater(period=100)
    model_params = [*world_model.parameters(), *distill_head.parameters(), *similarity.parameters()]
    optims = {"model": torch.optim.Adam(model_params, lr=3e-4, eps=1e-5),
              "actor": torch.optim.Adam(actor.parameters(), lr=8e-5, eps=1e-5),
              "value": torch.optim.Adam(value.parameters(), lr=8e-5, eps=1e-5)}

    def step(name, loss, params):
        optims[name].zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 100.0)
        optims[name].step()

    def update(batch):
        """One Vid2Act update (no guidance) on Dreamer rows ``[B, T]``."""
        batch = batch.to(device)
        wm = model_loss(batch)  # writes the posterior "belief", "state", "feature" into batch (with grad)
        teachers(batch)  # writes "teacher_feature" [B, T, N, F_t]: each teacher filters the same frames
        dist = distill_loss(batch)
        step("model", sum(v for k, v in wm.items() if k.startswith("loss_")) + dist["loss_distill"], model_params)
        act, imagined = actor_loss(batch)  # imagines H steps from the detached posterior states
        step("actor", act["loss_actor"], list(actor.parameters()))
        val = value_loss(imagined)  # critic regresses the lambda-returns of the same trajectory
        step("value", val["loss_value"], list(value.parameters()))
        target_updater.step()
        return {"model": (wm["loss_model_reco"] + wm["loss_model_kl"]).item(), "distill": dist["loss_distill"].item(),
                "actor": act["loss_actor"].item(), "value": val["loss_value"].item(), "w": dist["similarity_weights"]}

    # --- acting: RSSM filtering + actor, with the teachers' similarity weights of every env step ----
    policy = RecurrentPolicy(world_model, actor, explore=True, pre_actor=[TeacherTaskSelector(teachers, similarity)],
                             export_keys=("task_index", "similarity_weights"))
    for transform in policy.env_transforms()[1:]:  # [0] is InitTracker, which make_env already appends
        env.append_transform(transform)
    collector = Collector(env, policy, frames_per_batch=args.frames_per_batch, total_frames=args.env_steps,
                          init_random_frames=args.prefill)
    buffer = make_online_buffer(2 * args.env_steps + args.seq_len, args.batch_size, args.seq_len)  # rows kept in RAM
    writer = EpisodeWriter(buffer)  # collector batches -> whole episodes of Dreamer rows

    env_steps, updates, returns = 0, 0, []
    for batch in collector:
        env_steps += batch.numel()
        returns += [ep["return"] for ep in writer.extend(batch)]
        if env_steps < args.prefill or writer.rows_written == 0:
            print(f"env_steps {env_steps:6d} | prefill (random policy), {writer.rows_written} rows stored")
            continue
        for _ in range(args.updates_per_batch):
            out = update(buffer.sample())
            updates += 1
        weights = " ".join(f"{t}={w:.3f}" for t, w in zip(teachers.source_tasks, out["w"].tolist()))
        acted = "(random prefill)"  # the collector's random policy writes no task_index
        if env_steps - batch.numel() >= args.prefill:  # how often the policy selected each teacher k while acting
            acted = torch.bincount(batch["task_index"].reshape(-1).cpu(), minlength=N).tolist()
        print(f"env_steps {env_steps:6d} | updates {updates} | loss model {out['model']:.2f} "
              f"distill {out['distill']:.3f} actor {out['actor']:.3f} value {out['value']:.3f} "
              f"| similarity {weights} | acting k counts {acted}")
        if env_steps >= args.env_steps:
            break
    collector.shutdown()
    env.close()
    last_return = f"{returns[-1]:.1f}" if returns else "n/a"
    print(f"done: env_steps {env_steps}, updates {updates}, episodes {len(returns)}, last episode return {last_return}")


if __name__ == "__main__":
    main()
