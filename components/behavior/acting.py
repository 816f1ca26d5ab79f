"""Acting in the real env with an RSSM world model and an actor (paper Algorithm 1, lines 22–24).

Why not TorchRL's Dreamer acting stack: its ``RSSMPosterior``/``RSSMPrior`` policy writes the next recurrent
state under ``("next", ...)``, and inside a ``TransformedEnv`` the ``TensorDictPrimer`` that declares those
keys copies the *old* root value into ``next`` before ``EnvBase.step`` merges the policy's ``next`` preset,
so the preset is silently dropped. Here the policy overwrites the carried root keys in place and the primer
carries them to the next step — one mechanism, no ordering hazard.
"""

from __future__ import annotations

from typing import Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.data import Composite, Unbounded
from torchrl.envs import InitTracker, TensorDictPrimer
from torchrl.envs.utils import ExplorationType, set_exploration_type

__all__ = ["RecurrentPolicy"]


class RecurrentPolicy(TensorDictModuleBase):
    """Filter the env's frames with the RSSM posterior and act with an actor on the latent feature.

    At env step ``t`` it reads the frame ``o_t`` (``"pixels"``, uint8 ``[*B, 3, S, S]``), the env's
    ``"is_init"`` flag (TorchRL ``InitTracker``) and the carried ``"belief"``, ``"state"`` and
    ``"last_action"`` (``h_{t-1}``, ``s_{t-1}``, ``a_{t-1}``); computes ``e_t = q(e_{t-1}, a_{t-1}, o_t)``
    (reset to the initial state where ``is_init``), runs optional ``pre_actor`` modules on the latent
    TensorDict (Vid2Act's teacher weighting and action guidance), then the actor. It writes ``"action"``
    ``[*B, A]`` and overwrites ``"belief"``, ``"state"``, ``"last_action"`` with ``h_t``, ``s_t``, ``a_t``,
    which the primers of :meth:`env_transforms` carry to step ``t + 1``. Extra outputs of ``pre_actor``
    listed in ``export_keys`` (e.g. ``"task_index"``) are copied to the env's TensorDict too.

    ``pre_actor`` modules see the latent TensorDict: ``"belief"``, ``"state"``, ``"feature"`` (``e_t``),
    ``"pixels"``, ``"is_init"``, ``"last_action"`` (``a_{t-1}``) and the recurrent state they carry
    themselves: a module with a ``carry_spec()`` method (a TorchRL ``Composite`` of per-env shapes, e.g.
    the teachers' beliefs) gets those keys primed with zeros, read from and written back to the env's
    TensorDict at every step.

    Args:
        world_model: a :class:`~vid2act.components.world_model.WorldModel` (``encoder``, ``rssm``).
        actor: TorchRL actor reading ``"feature"`` (and what ``pre_actor`` adds), writing ``"action"``.
        explore: sample the posterior and the action (True, data collection) or take modes (evaluation).
        pre_actor: modules run on the latent TensorDict before the actor, in order.
        export_keys: keys of the latent TensorDict to copy into the env's TensorDict.
        label: one-hot task label ``[L]`` for a label-conditioned world model (``label_dim > 0``).

    Raises:
        KeyError: the env TensorDict lacks ``"pixels"`` or ``"is_init"`` (add :meth:`env_transforms`).
    """

    def __init__(
        self,
        world_model: torch.nn.Module,
        actor: TensorDictModuleBase,
        *,
        explore: bool,
        pre_actor: Sequence[TensorDictModuleBase] = (),
        export_keys: Sequence[str] = (),
        label: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.world_model = world_model
        self.actor = actor
        self.pre_actor = torch.nn.ModuleList(pre_actor)
        self.explore = explore
        self.export_keys = list(export_keys)
        self.register_buffer("label", label, persistent=False)
        self.carry_keys = [k for m in self.pre_actor if hasattr(m, "carry_spec") for k in m.carry_spec().keys()]
        self.in_keys = ["pixels", "is_init", "belief", "state", "last_action", *self.carry_keys]
        self.out_keys = ["action", "belief", "state", "last_action", *self.carry_keys, *self.export_keys]

    @property
    def action_dim(self) -> int:
        return self.world_model.rssm.action_dim

    def env_transforms(self) -> list:
        """``InitTracker`` + a ``TensorDictPrimer`` of the carried ``belief``, ``state``, ``last_action`` (zeros)."""
        rssm = self.world_model.rssm
        spec = Composite(
            belief=Unbounded(shape=(rssm.belief_dim,)),
            state=Unbounded(shape=(rssm.state_dim,)),
            last_action=Unbounded(shape=(rssm.action_dim,)),
        )
        for module in self.pre_actor:
            if hasattr(module, "carry_spec"):
                spec.update(module.carry_spec())
        return [InitTracker(), TensorDictPrimer(spec, default_value=0.0)]

    @torch.no_grad()
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        for key in ("pixels", "is_init"):
            if key not in tensordict.keys():
                raise KeyError(
                    f"RecurrentPolicy needs {key!r} in the env TensorDict (keys: {sorted(tensordict.keys())}); "
                    "append RecurrentPolicy.env_transforms() to the env"
                )
        unbatched = tensordict.batch_dims == 0
        td = tensordict.unsqueeze(0) if unbatched else tensordict
        batch = td.batch_size
        label = None if self.label is None else self.label.expand(*batch, -1)
        embed = self.world_model.encoder(td["pixels"], label)
        rssm = self.world_model.rssm
        zero = torch.zeros((), device=embed.device)
        belief = td.get("belief", None)
        if belief is None:  # first call outside an env with primers: start from the initial state
            init = rssm.initial(batch, device=embed.device)
            belief, state, last = init["belief"], init["state"], zero.expand(*batch, rssm.action_dim)
        else:
            state, last = td["state"], td["last_action"]
        post = rssm.obs_step(belief, state, last, embed, td["is_init"], label, sample=self.explore)
        latent = TensorDict(
            {"belief": post["belief"], "state": post["state"], "feature": post["feature"],
             "pixels": td["pixels"], "is_init": td["is_init"], "last_action": last},
            batch_size=batch,
        )
        for key in self.carry_keys:
            if key in td.keys():
                latent.set(key, td[key])
        if label is not None:
            latent.set("task_label", label)
        for module in self.pre_actor:
            latent = module(latent)
        mode = ExplorationType.RANDOM if self.explore else ExplorationType.DETERMINISTIC
        with set_exploration_type(mode):
            latent = self.actor(latent)
        action = latent["action"]
        td.set("action", action)
        td.set("belief", latent["belief"])
        td.set("state", latent["state"])
        td.set("last_action", action)
        for key in (*self.carry_keys, *self.export_keys):
            td.set(key, latent[key])
        return td.squeeze(0) if unbatched else td
