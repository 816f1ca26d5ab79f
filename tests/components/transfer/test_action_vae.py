"""ActionVAE (G, Eq. 6) and GuidanceModule (the guided actor's input, Eq. 8)."""
import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type

from vid2act.components.transfer import ActionVAE, GuidanceModule

FS, A, K, G = 6, 2, 3, 8


def _vae(seed=0, **kw):
    torch.manual_seed(seed)
    return ActionVAE(FS, A, K, encoder_dims=(32,), decoder_dims=(32,), guidance_dim=G, **kw)


def test_shapes_with_arbitrary_batch_dims_and_broadcast_task():
    vae = _vae()
    s, a = torch.randn(3, 5, FS), torch.rand(3, 5, A) * 2 - 1
    k = torch.randint(K, (3, 5))
    out = vae(s, a, k)
    assert out.action.shape == (3, 5, A)
    assert out.mean.shape == out.std.shape == (3, 5, 2 * A)  # latent 2A by default (BCQ)
    assert out.guidance.shape == (3, 5, G)
    assert bool((out.action.abs() <= 1).all())
    assert vae.guidance_features(s, k).shape == (3, 5, G)
    assert vae.decode(s, torch.tensor(1)).shape == (3, 5, A)  # a scalar label broadcasts


def test_guidance_is_the_decoders_hidden_feature_not_the_action():
    vae = _vae()
    s, k, z = torch.randn(7, FS), torch.randint(K, (7,)), torch.zeros(7, 2 * A)
    g = vae.guidance_features(s, k, z)
    assert g.shape == (7, G) and bool((g >= 0).all())  # post-ReLU hidden feature
    torch.testing.assert_close(vae.decode(s, k, z), torch.tanh(vae.decoder_out(g)))


def test_prior_latent_is_clipped_to_half():
    vae = _vae()
    z = vae.sample_latent(torch.Size([4000]), like=torch.zeros(1))
    assert float(z.abs().max()) == pytest.approx(0.5)
    assert float((z.abs() == 0.5).float().mean()) > 0.5  # P(|N(0,1)| > 0.5) ~ 0.62
    s, k = torch.randn(9, FS), torch.randint(K, (9,))
    torch.manual_seed(3)
    sampled = vae.decode(s, k)
    torch.manual_seed(3)
    z = torch.randn(9, 2 * A).clamp(-0.5, 0.5)
    torch.testing.assert_close(sampled, vae.decode(s, k, z))


@pytest.mark.parametrize("bias, expected", [(100.0, 15.0), (-100.0, -4.0)])
def test_encoder_log_std_is_clamped(bias, expected):
    vae = _vae()
    last = [m for m in vae.encoder.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias[2 * A :].fill_(bias)  # second half = log std
    _, std = vae.encode(torch.randn(4, FS), torch.zeros(4, A), torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(std.log(), torch.full((4, 2 * A), expected))


def test_task_label_changes_the_decoder_input():
    vae = _vae()
    s, z = torch.randn(5, FS), torch.zeros(5, 2 * A)
    a0 = vae.decode(s, torch.zeros(5, dtype=torch.long), z)
    a1 = vae.decode(s, torch.ones(5, dtype=torch.long), z)
    assert not torch.allclose(a0, a1)


def test_bad_inputs_raise_clear_errors():
    vae = _vae()
    s = torch.randn(4, FS)
    with pytest.raises(TypeError, match="integer"):
        vae.decode(s, torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        vae.decode(s, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="broadcast"):
        vae.decode(s, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="last dim"):
        vae.decode(torch.randn(4, FS + 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="z must have shape"):
        vae.decode(s, torch.zeros(4, dtype=torch.long), torch.zeros(4, 3))
    with pytest.raises(TypeError):
        GuidanceModule(nn.Linear(2, 2))


class _GuidedActor(nn.Module):
    """Minimal actor on [e, g] (the real one lives in components/behavior)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(FS + G, A)

    def forward(self, feature, guidance):
        return torch.tanh(self.net(torch.cat([feature, guidance], -1)))


def test_guidance_module_feeds_a_guided_actor():
    vae = _vae()
    actor = TensorDictModule(_GuidedActor(), in_keys=["feature", "guidance"], out_keys=["action"])
    policy = TensorDictSequential(GuidanceModule(vae, deterministic=True), actor)
    td = TensorDict({"feature": torch.randn(4, FS), "task_index": torch.tensor([0, 1, 2, 0])}, [4])
    out = policy(td.clone())
    assert out["guidance"].shape == (4, G) and out["action"].shape == (4, A)
    assert not out["guidance"].requires_grad  # G is frozen during behavior learning
    expected = vae.guidance_features(td["feature"], td["task_index"], torch.zeros(4, 2 * A))
    torch.testing.assert_close(out["guidance"], expected.detach())


def test_guidance_module_sampling_follows_exploration_type():
    vae = _vae()
    module = GuidanceModule(vae)
    td = TensorDict({"feature": torch.randn(16, FS), "task_index": torch.randint(K, (16,))}, [16])
    zero = vae.guidance_features(td["feature"], td["task_index"], torch.zeros(16, 2 * A)).detach()
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        torch.testing.assert_close(module(td.clone())["guidance"], zero)
    with set_exploration_type(ExplorationType.RANDOM):
        g1, g2 = module(td.clone())["guidance"], module(td.clone())["guidance"]
    assert not torch.allclose(g1, g2)
    assert not torch.allclose(GuidanceModule(vae, deterministic=False)(td.clone())["guidance"], zero)
