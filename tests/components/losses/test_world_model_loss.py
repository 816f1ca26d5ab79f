"""WorldModelLoss: terms against hand computations, balanced KL + free nats, keys, gradients, errors."""

import pytest
import torch
from tensordict import TensorDict
from torch import distributions as D

from vid2act.components.losses.world_model_loss import WorldModelLoss
from vid2act.components.world_model import make_world_model, preprocess_pixels

A, L = 2, 3



def _batch(b=2, t=4, label_dim=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(b, t, 1, dtype=torch.bool)
    is_first[:, 0] = True
    td = TensorDict(
        {
            "pixels": torch.randint(0, 256, (b, t, 3, 64, 64), dtype=torch.uint8, generator=g),
            "prev_action": torch.rand(b, t, A, generator=g) * 2 - 1,
            "is_first": is_first,
            "reward": torch.rand(b, t, 1, generator=g),
        },
        [b, t],
    )
    if label_dim:
        td["task_label"] = torch.eye(label_dim)[torch.arange(b) % label_dim].unsqueeze(1).expand(b, t, label_dim)
    return td


def _model(latent="categorical", label_dim=0, reward_head=True):
    torch.manual_seed(0)
    return make_world_model("tiny", action_dim=A, label_dim=label_dim, reward_head=reward_head, latent=latent)


def test_output_keys_and_in_place_model_outputs():
    loss = WorldModelLoss(_model())
    td = _batch()
    out = loss(td)
    assert set(out.keys()) == {"loss_model_kl", "loss_model_reco", "loss_model_reward", "kl", "prior_entropy",
                               "posterior_entropy"}
    assert all(out[k].shape == () for k in out.keys())
    assert out["loss_model_reco"].requires_grad and not out["kl"].requires_grad
    assert not out["prior_entropy"].requires_grad
    assert {"feature", "state", "belief", "reco_pixels", "reward_pred", "posterior_logits"} <= set(td.keys())
    assert td["state"].requires_grad  # graph kept for DistillationLoss
    assert set(loss.out_keys) == set(out.keys())


def test_reward_term_only_with_head_and_reward():
    no_head = WorldModelLoss(_model(reward_head=False))(_batch())
    assert "loss_model_reward" not in no_head.keys()
    no_reward = WorldModelLoss(_model())(_batch().exclude("reward"))
    assert "loss_model_reward" not in no_reward.keys()
    assert "reward" not in WorldModelLoss(_model(reward_head=False)).in_keys


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
def test_reco_and_reward_terms_match_hand_computation(latent):
    loss = WorldModelLoss(_model(latent), reco_scale=2.0, reward_scale=3.0)
    td = _batch()
    out = loss(td)
    target = td["pixels"].float() / 255 - 0.5
    reco = 0.5 * ((td["reco_pixels"] - target) ** 2).sum((-1, -2, -3)).mean()
    reward = 0.5 * ((td["reward_pred"] - td["reward"]) ** 2).mean()
    torch.testing.assert_close(out["loss_model_reco"], 2.0 * reco)
    torch.testing.assert_close(out["loss_model_reward"], 3.0 * reward)
    kl, raw = loss.balanced_kl(td)
    torch.testing.assert_close(out["loss_model_kl"], kl)
    torch.testing.assert_close(out["kl"], raw)
    rssm = loss.world_model.rssm
    torch.testing.assert_close(out["prior_entropy"], rssm.distribution(td, "prior").entropy().mean().detach())


def _hand_params(latent, seed=0):
    g = torch.Generator().manual_seed(seed)
    if latent == "categorical":  # tiny preset: 8 categoricals x 8 classes
        return {
            "prior_logits": torch.randn(2, 3, 8, 8, generator=g),
            "posterior_logits": 2 * torch.randn(2, 3, 8, 8, generator=g),
        }
    return {
        "prior_mean": torch.randn(2, 3, 8, generator=g),
        "prior_std": torch.rand(2, 3, 8, generator=g) + 0.2,
        "posterior_mean": torch.randn(2, 3, 8, generator=g),
        "posterior_std": torch.rand(2, 3, 8, generator=g) + 0.2,
    }


def _dist(latent, params, which):
    if latent == "categorical":
        return D.Independent(D.OneHotCategorical(logits=params[f"{which}_logits"]), 1)
    return D.Independent(D.Normal(params[f"{which}_mean"], params[f"{which}_std"]), 1)


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
@pytest.mark.parametrize("free_nats", [0.0, "below_kl", 1e3])
def test_balanced_kl_matches_torch_distributions(latent, free_nats):
    alpha, scale = 0.8, 0.5
    base = _hand_params(latent)
    kl_value = D.kl_divergence(_dist(latent, base, "posterior"), _dist(latent, base, "prior")).mean()
    assert kl_value > 0.5
    free = 0.5 * float(kl_value) if free_nats == "below_kl" else free_nats
    loss_mod = WorldModelLoss(_model(latent), kl_balance=alpha, free_nats=free, kl_scale=scale)

    mine = {k: v.clone().requires_grad_() for k, v in base.items()}
    got, raw = loss_mod.balanced_kl(TensorDict(mine, [2, 3]))
    got.backward()

    # hand computation, with the stop-gradients spelled out on separate leaves
    hand = {k: v.clone().requires_grad_() for k, v in base.items()}
    sg = {k: v.detach() for k, v in hand.items()}
    post_prior = D.kl_divergence(_dist(latent, sg, "posterior"), _dist(latent, hand, "prior")).mean()
    post_post = D.kl_divergence(_dist(latent, hand, "posterior"), _dist(latent, sg, "prior")).mean()
    expected = scale * (alpha * torch.clamp(post_prior, min=free) + (1 - alpha) * torch.clamp(post_post, min=free))
    expected.backward()

    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(raw, kl_value)
    for key in base:
        torch.testing.assert_close(mine[key].grad, hand[key].grad, msg=key)
    prior_key = "prior_logits" if latent == "categorical" else "prior_mean"
    post_key = prior_key.replace("prior", "posterior")
    if free < kl_value:
        # the prior gets alpha of the KL gradient, the posterior 1 - alpha
        full = {k: v.clone().requires_grad_() for k, v in base.items()}
        D.kl_divergence(_dist(latent, full, "posterior"), _dist(latent, full, "prior")).mean().backward()
        torch.testing.assert_close(mine[prior_key].grad, scale * alpha * full[prior_key].grad)
        torch.testing.assert_close(mine[post_key].grad, scale * (1 - alpha) * full[post_key].grad)
    else:
        torch.testing.assert_close(got, torch.tensor(scale * free))
        assert mine[prior_key].grad.abs().sum() == 0 and mine[post_key].grad.abs().sum() == 0


@pytest.mark.parametrize("latent,label_dim", [("categorical", 0), ("gaussian", 0), ("categorical", L)])
def test_every_parameter_gets_a_finite_nonzero_gradient(latent, label_dim):
    model = _model(latent, label_dim)
    loss = WorldModelLoss(model, free_nats=0.0)
    out = loss(_batch(label_dim=label_dim))
    sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    parts = {"encoder": model.encoder, "rssm": model.rssm, "decoder": model.decoder, "reward_head": model.reward_head}
    for part, module in parts.items():
        for name, p in module.named_parameters():
            assert p.grad is not None, f"{part}.{name} has no grad"
            assert torch.isfinite(p.grad).all(), f"{part}.{name} grad not finite"
            assert p.grad.abs().sum() > 0, f"{part}.{name} grad is zero"


def test_set_keys_renames_inputs():
    td = _batch(label_dim=L)
    renamed = TensorDict(
        {"obs": td["pixels"], "act": td["prev_action"], "first": td["is_first"], "rew": td["reward"],
         "label": td["task_label"]},
        td.batch_size,
    )
    loss = WorldModelLoss(_model(label_dim=L))
    torch.manual_seed(5)
    expected = loss(td.clone())
    loss.set_keys(pixels="obs", prev_action="act", is_first="first", reward="rew", task_label="label")
    assert set(loss.in_keys) == {"obs", "act", "first", "rew", "label"}
    torch.manual_seed(5)
    got = loss(renamed)
    for key in expected.keys():
        torch.testing.assert_close(got[key], expected[key], msg=key)
    with pytest.raises(KeyError, match="'obs'"):
        loss(td)
    with pytest.raises(ValueError, match="not an accepted tensordict key"):
        loss.set_keys(observation="x")


def test_non_finite_terms_raise_naming_the_term():
    model = _model()
    with torch.no_grad():
        model.decoder.linear.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss_model_reco"):
        WorldModelLoss(model)(_batch())
    out = WorldModelLoss(model, check_finite=False)(_batch())
    assert torch.isnan(out["loss_model_reco"]) and torch.isfinite(out["loss_model_kl"])


def test_bad_arguments_and_inputs():
    model = _model()
    with pytest.raises(TypeError, match="WorldModel"):
        WorldModelLoss(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="kl_balance"):
        WorldModelLoss(model, kl_balance=1.5)
    with pytest.raises(ValueError, match="free_nats"):
        WorldModelLoss(model, free_nats=-1.0)
    with pytest.raises(KeyError, match="is_first"):
        WorldModelLoss(model)(_batch().exclude("is_first"))
    bad = _batch()
    bad["reward"] = torch.zeros(2, 4, 2)
    with pytest.raises(ValueError, match="reward must have shape"):
        WorldModelLoss(model)(bad)
    # a [B, T] reward (no trailing 1) is accepted
    flat = _batch()
    flat.set("reward", flat["reward"].squeeze(-1))
    assert "loss_model_reward" in WorldModelLoss(model)(flat).keys()
    # float pixels are taken as already centred
    centred = _batch()
    torch.manual_seed(1)
    a = WorldModelLoss(model)(centred.clone())
    centred["pixels"] = preprocess_pixels(centred["pixels"])
    torch.manual_seed(1)
    b = WorldModelLoss(model)(centred)
    torch.testing.assert_close(a["loss_model_reco"], b["loss_model_reco"])


def _reference_loss(wm, td):
    """The loss as first written: NCHW convolutions with contiguous weights, pixels converted twice,
    reconstruction as ``0.5 (o - o_hat)^2`` summed per frame then averaged (no fused reduction)."""
    from torch.nn import functional as F

    def conv_stack(x, layers, transposed):
        for layer in layers:
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                op = F.conv_transpose2d if transposed else F.conv2d
                x = op(x.contiguous(), layer.weight.contiguous(), layer.bias, stride=layer.stride)
            else:
                x = layer(x)
        return x

    b, t = td.batch_size
    x = preprocess_pixels(td["pixels"]).reshape(-1, 3, 64, 64)
    embed = conv_stack(x, wm.encoder.net, False).reshape(b, t, -1)
    out = wm.rssm.observe(embed, td["prev_action"], td["is_first"])
    h = wm.decoder.linear(out["feature"]).reshape(-1, 32 * wm.decoder.depth, 1, 1)
    reco_pixels = conv_stack(h, wm.decoder.net, True).reshape(b, t, 3, 64, 64)
    reco = 0.5 * (reco_pixels - preprocess_pixels(td["pixels"])).pow(2).flatten(-3).sum(-1)
    kl_loss, _ = WorldModelLoss(wm).balanced_kl(out)
    reward = 0.5 * (wm.reward_head(out["feature"]) - td["reward"]).pow(2)
    return {"loss_model_kl": kl_loss, "loss_model_reco": reco.mean(), "loss_model_reward": reward.mean()}


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
def test_channels_last_fused_loss_equals_the_plain_nchw_computation(latent):
    """The fast path (channels-last convolutions, one pixel conversion, fused reconstruction sum) changes
    no number: same loss terms and same gradients as the plain NCHW computation, same seed and batch."""
    wm = _model(latent)
    assert wm.encoder.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    td = _batch(b=3, t=5, seed=3)
    torch.manual_seed(7)
    fast = WorldModelLoss(wm)(td.clone())
    fast_grads = torch.autograd.grad(sum(fast[k] for k in fast.keys() if k.startswith("loss_")), list(wm.parameters()))
    torch.manual_seed(7)  # the same posterior samples
    ref = _reference_loss(wm, td.clone())
    ref_grads = torch.autograd.grad(sum(ref.values()), list(wm.parameters()))
    for key, value in ref.items():
        torch.testing.assert_close(fast[key], value, rtol=1e-5, atol=1e-5)
    for (name, _), g_fast, g_ref in zip(wm.named_parameters(), fast_grads, ref_grads):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")
