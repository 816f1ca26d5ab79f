"""Encoder, decoder, presets and the WorldModel TensorDict verb: shapes, conversions, errors."""

import pytest
import torch
from tensordict import TensorDict

from vid2act.components.world_model import (
    PRESETS,
    ConvDecoder,
    ConvEncoder,
    WorldModel,
    WorldModelConfig,
    make_world_model,
    preprocess_pixels,
)

A, L = 3, 4



def _batch(b=2, t=5, label_dim=0, seed=0):
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
        td["task_label"] = torch.eye(label_dim)[torch.randint(0, label_dim, (b,), generator=g)].unsqueeze(1).expand(
            b, t, label_dim
        )
    return td


def test_preprocess_pixels_converts_uint8_and_keeps_float():
    x = torch.tensor([0, 255, 51], dtype=torch.uint8).view(3, 1, 1).expand(3, 64, 64)
    out = preprocess_pixels(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out[:, 0, 0], torch.tensor([-0.5, 0.5, 0.2 - 0.5]))
    f = torch.rand(3, 64, 64) - 0.5
    assert preprocess_pixels(f) is f
    with pytest.raises(TypeError, match="uint8 or floating"):
        preprocess_pixels(torch.zeros(3, 64, 64, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"\(3, 64, 64\)"):
        preprocess_pixels(torch.zeros(64, 64, 3, dtype=torch.uint8))


def test_encoder_uint8_equals_preprocessed_float_and_label_changes_embedding():
    torch.manual_seed(0)
    enc = ConvEncoder(depth=4, label_dim=L)
    td = _batch(label_dim=L)
    label = td["task_label"]
    out_u8 = enc(td["pixels"], label)
    assert out_u8.shape == (2, 5, enc.embed_dim) and enc.embed_dim == 32 * 4
    assert torch.allclose(out_u8, enc(preprocess_pixels(td["pixels"]), label))
    other = torch.roll(label, 1, dims=-1)
    assert not torch.allclose(out_u8, enc(td["pixels"], other))
    with pytest.raises(ValueError, match="needs a task label"):
        enc(td["pixels"])
    with pytest.raises(ValueError, match="label must have shape"):
        enc(td["pixels"], label[..., :2])
    with pytest.raises(ValueError, match="label_dim=0"):
        ConvEncoder(depth=4)(td["pixels"], label)


def test_decoder_shape_and_errors():
    dec = ConvDecoder(feature_dim=10, depth=4)
    assert dec(torch.zeros(2, 3, 10)).shape == (2, 3, 3, 64, 64)
    assert dec(torch.zeros(10)).shape == (3, 64, 64)
    with pytest.raises(ValueError, match=r"\[\*, 10\]"):
        dec(torch.zeros(2, 11))


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
@pytest.mark.parametrize("label_dim", [0, L])
def test_world_model_forward_writes_all_outputs(latent, label_dim):
    torch.manual_seed(0)
    wm = make_world_model("tiny", action_dim=A, label_dim=label_dim, latent=latent)
    cfg = PRESETS["tiny"]
    td = _batch(label_dim=label_dim)
    assert wm(td) is td
    B, T = 2, 5
    belief = cfg.belief_dim
    state = cfg.num_categoricals * cfg.num_classes if latent == "categorical" else cfg.stoch_dim
    assert td["embed"].shape == (B, T, 32 * cfg.cnn_depth)
    assert td["belief"].shape == (B, T, belief)
    assert td["state"].shape == (B, T, state)
    assert torch.equal(td["feature"], torch.cat([td["belief"], td["state"]], -1))
    assert td["reco_pixels"].shape == (B, T, 3, 64, 64) and td["reco_pixels"].dtype == torch.float32
    assert td["reward_pred"].shape == (B, T, 1)
    if latent == "categorical":
        shape = (B, T, cfg.num_categoricals, cfg.num_classes)
        assert td["prior_logits"].shape == shape and td["posterior_logits"].shape == shape
        one_hot = td["state"].view(B, T, cfg.num_categoricals, cfg.num_classes)
        assert torch.equal(one_hot.sum(-1), torch.ones(B, T, cfg.num_categoricals))
    else:
        for key in ("prior_mean", "prior_std", "posterior_mean", "posterior_std"):
            assert td[key].shape == (B, T, cfg.stoch_dim)
        assert (td["prior_std"] >= cfg.min_std).all() and (td["posterior_std"] >= cfg.min_std).all()
    assert set(wm.out_keys) <= set(td.keys())
    assert ("task_label" in wm.in_keys) == bool(label_dim)


def test_world_model_without_reward_head_and_missing_keys():
    wm = make_world_model("tiny", action_dim=A, reward_head=False)
    td = _batch()
    wm(td)
    assert "reward_pred" not in td.keys() and not wm.has_reward_head
    with pytest.raises(KeyError, match="prev_action"):
        wm(_batch().exclude("prev_action"))
    labelled = make_world_model("tiny", action_dim=A, label_dim=L)
    with pytest.raises(KeyError, match="task_label"):
        labelled(_batch())
    with pytest.raises(ValueError, match="prev_action must have shape"):
        wm.compute(td["pixels"], td["prev_action"][..., :2], td["is_first"])


def test_world_model_rejects_mismatched_parts():
    good = make_world_model("tiny", action_dim=A)
    with pytest.raises(ValueError, match="embed_dim"):
        WorldModel(ConvEncoder(depth=4), good.rssm, good.decoder)
    with pytest.raises(ValueError, match="label_dim"):
        WorldModel(ConvEncoder(depth=8, label_dim=2), good.rssm, good.decoder)
    with pytest.raises(ValueError, match="feature_dim"):
        WorldModel(good.encoder, good.rssm, ConvDecoder(feature_dim=7, depth=8))


def test_obs_step_for_acting_carries_state():
    torch.manual_seed(0)
    wm = make_world_model("tiny", action_dim=A)
    td = _batch(b=3, t=2)
    step = td[:, 0].clone()
    wm.obs_step(step, sample=False)
    assert step["belief"].shape == (3, wm.rssm.belief_dim) and step["feature"].shape == (3, wm.feature_dim)
    nxt = td[:, 1].clone().update(step.select("belief", "state"))
    wm.obs_step(nxt, sample=False)
    seq = wm.compute(td["pixels"], td["prev_action"], td["is_first"], sample=False)
    assert torch.allclose(nxt["feature"], seq["feature"][:, 1], atol=1e-6)


def test_presets_build_and_unknown_preset_errors():
    sizes = {}
    for name in ("tiny", "small", "paper"):
        wm = make_world_model(name, action_dim=6)
        sizes[name] = sum(p.numel() for p in wm.parameters())
        assert wm.rssm.belief_dim == PRESETS[name].belief_dim
    assert sizes["tiny"] < sizes["small"] < sizes["paper"]
    paper = make_world_model("paper", action_dim=6)
    # DreamerV2's DMC sizes (600 is its Atari belief size).
    assert paper.encoder.depth == 48 and paper.rssm.belief_dim == 200 and paper.rssm.state_dim == 32 * 32
    official = make_world_model("official", action_dim=4)  # Vid2Act's released Meta-World code
    assert (official.encoder.depth, official.rssm.belief_dim, official.rssm.latent.kind,
            official.rssm.state_dim) == (32, 200, "gaussian", 50)
    with pytest.raises(ValueError, match=r"'paper', 'small', 'tiny'"):
        make_world_model("huge", action_dim=6)
    with pytest.raises(ValueError, match="latent"):
        make_world_model("tiny", action_dim=6, latent="beta")
    with pytest.raises(TypeError):
        make_world_model(3, action_dim=6)
    cfg = WorldModelConfig.from_preset("tiny", belief_dim=24, latent="gaussian")
    wm = make_world_model(cfg, action_dim=2, reward_head=False)
    assert wm.rssm.belief_dim == 24 and wm.rssm.latent.kind == "gaussian" and wm.reward_head is None
    assert wm.config == cfg
    with pytest.raises(ValueError, match="cnn_depth"):
        WorldModelConfig(cnn_depth=0)
