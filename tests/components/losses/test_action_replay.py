"""ActionReplayLoss (Eq. 7): values, BCQ reduction, detached state, keys, and that G learns."""
import pytest
import torch
import torch.nn.functional as F
from tensordict import TensorDict
from torch.distributions import Normal, kl_divergence

from vid2act.components.losses.action_replay import ActionReplayLoss
from vid2act.components.transfer import ActionVAE

FS, A, K, BATCH = 6, 2, 3, 32


@pytest.fixture
def single_thread():
    """Tiny networks: one intra-op thread is much faster on a shared, loaded CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _vae(seed=0, hidden=32):
    torch.manual_seed(seed)
    return ActionVAE(FS, A, K, encoder_dims=(hidden,), decoder_dims=(hidden,), guidance_dim=16)


def _batch(seed=0, state_grad=False):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(BATCH, FS, generator=g).requires_grad_(state_grad)
    a = torch.rand(BATCH, A, generator=g) * 2 - 1
    k = torch.randint(K, (BATCH,), generator=g)
    return s, a, k, TensorDict({"replay_state": s, "action": a, "task_index": k}, [BATCH])


def test_loss_matches_squared_error_and_analytic_kl():
    vae = _vae()
    s, a, k, td = _batch()
    torch.manual_seed(1)
    out = ActionReplayLoss(vae, beta_kl=0.3)(td)
    torch.manual_seed(1)  # replay the same eps
    mean, std = vae.encode(s, a, k)
    a_hat = vae.decode(s, k, mean + std * torch.randn_like(std))
    reco = ((a - a_hat) ** 2).sum(-1).mean()
    kl = kl_divergence(Normal(mean, std), Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(out["loss_replay_reco"], reco)
    torch.testing.assert_close(out["loss_replay_kl"], 0.3 * kl)
    torch.testing.assert_close(out["replay_kl"], kl.detach())
    assert not out["replay_kl"].requires_grad


def test_dim_reduction_mean_reproduces_bcq():
    vae = _vae()
    s, a, k, td = _batch()
    torch.manual_seed(1)
    out = ActionReplayLoss(vae, dim_reduction="mean")(td)
    torch.manual_seed(1)
    recon, mean, std, _ = vae(s, a, k)
    bcq_kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
    torch.testing.assert_close(out["loss_replay_reco"], F.mse_loss(recon, a))
    torch.testing.assert_close(out["loss_replay_kl"], 0.5 * bcq_kl)  # beta_kl 0.5 by default


def test_state_is_detached_and_the_vae_gets_gradients():
    vae = _vae()
    s, _, _, td = _batch(state_grad=True)
    out = ActionReplayLoss(vae)(td)
    (out["loss_replay_reco"] + out["loss_replay_kl"]).backward()
    assert s.grad is None
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in vae.parameters())


def test_collector_mask_drops_padded_positions():
    vae = _vae()
    s, a, k, td = _batch()
    torch.manual_seed(1)
    per_sample = ActionReplayLoss(vae, reduction="none")(td)["loss_replay_reco"]
    mask = torch.arange(BATCH) < BATCH // 2
    a_nan = a.clone()
    a_nan[~mask] = float("nan")  # padded rows may hold garbage
    masked = TensorDict({"replay_state": s, "action": a_nan, "task_index": k}, [BATCH])
    masked.set(("collector", "mask"), mask.unsqueeze(-1))
    torch.manual_seed(1)
    out = ActionReplayLoss(vae)(masked)
    torch.testing.assert_close(out["loss_replay_reco"], per_sample[mask].mean())
    (out["loss_replay_reco"] + out["loss_replay_kl"]).backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in vae.parameters())


def test_set_keys_renames_the_inputs():
    vae = _vae()
    s, a, k, td = _batch()
    loss = ActionReplayLoss(vae)
    loss.set_keys(replay_state=("source", "state"), action=("source", "action"), task_index="label")
    assert loss.in_keys == [("source", "state"), ("source", "action"), "label"]
    renamed = TensorDict({"source": {"state": s, "action": a}, "label": k}, [BATCH])
    torch.manual_seed(1)
    got = loss(renamed)
    torch.manual_seed(1)
    want = ActionReplayLoss(vae)(td)
    torch.testing.assert_close(got["loss_replay_reco"], want["loss_replay_reco"])
    with pytest.raises(KeyError, match="source"):
        loss(td)


def test_bad_inputs_raise_clear_errors():
    vae = _vae()
    s, a, _, _ = _batch()
    loss = ActionReplayLoss(vae)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        loss(TensorDict({"replay_state": s, "action": a, "task_index": torch.full((BATCH,), K)}, [BATCH]))
    bad_a = a.clone()
    bad_a[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite"):
        zeros = torch.zeros(BATCH, dtype=torch.long)
        loss(TensorDict({"replay_state": s, "action": bad_a, "task_index": zeros}, [BATCH]))
    with pytest.raises(ValueError, match="beta_kl"):
        ActionReplayLoss(vae, beta_kl=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        ActionReplayLoss(vae, reduction="max")
    with pytest.raises(TypeError):
        ActionReplayLoss(torch.nn.Linear(2, 2))


def test_vae_learns_a_task_dependent_state_to_action_map(single_thread):
    """Sources k act with a = tanh(W_k s); G must reproduce the map of the requested task."""
    torch.manual_seed(0)
    weights = torch.randn(K, A, FS)  # a different W per task
    vae = _vae(hidden=64)
    loss_fn = ActionReplayLoss(vae)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)

    def batch(n):
        s = torch.randn(n, FS)
        k = torch.randint(K, (n,))
        a = torch.tanh(torch.einsum("nas,ns->na", weights[k], s))
        return s, a, k

    for _ in range(400):
        s, a, k = batch(128)
        out = loss_fn(TensorDict({"replay_state": s, "action": a, "task_index": k}, [128]))
        opt.zero_grad()
        (out["loss_replay_reco"] + out["loss_replay_kl"]).backward()
        opt.step()

    s, a, k = batch(512)
    with torch.no_grad():
        right = (vae.decode(s, k) - a).pow(2).mean()
        wrong = (vae.decode(s, (k + 1) % K) - a).pow(2).mean()
    assert float(a.pow(2).mean()) > 0.3  # targets are not trivially small
    assert float(right) < 0.03
    assert float(wrong) > 10 * float(right)  # the generated action depends on the label
