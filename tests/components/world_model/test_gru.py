"""DreamerV2's LayerNorm GRU cell and the RSSM's ``gru`` option (``"layer_norm"`` / ``"torch"``)."""

import dataclasses

import pytest
import torch
from tensordict import TensorDict
from torch import nn
from torchrl.modules import RSSMPosteriorV3, RSSMPriorV3

from vid2act.components.losses.world_model_loss import WorldModelLoss
from vid2act.components.world_model import (
    RSSM, GaussianPosterior, GaussianPrior, LayerNormGRUCell, WorldModelConfig, make_world_model,
)

A, E, D, H = 2, 6, 5, 7


def _reference(cell, x, h, update_bias=-1.0):
    """DreamerV2 ``GRUCell.call`` written out by hand (LayerNorm over the 3 H pre-activations)."""
    parts = torch.cat([x, h], -1) @ cell.linear.weight.T + cell.linear.bias
    if cell.norm is not None:
        mean = parts.mean(-1, keepdim=True)
        var = parts.var(-1, unbiased=False, keepdim=True)
        parts = (parts - mean) / torch.sqrt(var + 1e-3) * cell.norm.weight + cell.norm.bias
    reset, cand, update = parts[:, :H], parts[:, H:2 * H], parts[:, 2 * H:]
    reset = torch.sigmoid(reset)
    cand = torch.tanh(reset * cand)
    update = torch.sigmoid(update + update_bias)
    return update * cand + (1 - update) * h


@pytest.mark.parametrize("norm", [True, False])
def test_cell_equals_the_dreamerv2_formula(norm):
    torch.manual_seed(0)
    cell = LayerNormGRUCell(D, H, norm=norm)
    if norm:  # non-trivial LayerNorm scale and offset, so both enter the check
        with torch.no_grad():
            cell.norm.weight.uniform_(0.5, 1.5)
            cell.norm.bias.normal_()
    with torch.no_grad():
        cell.linear.bias.normal_()
    x, h = torch.randn(4, D), torch.randn(4, H)
    torch.testing.assert_close(cell(x, h), _reference(cell, x, h), rtol=1e-5, atol=1e-6)
    # nn.GRUCell's conventions: unbatched input, hidden=None is the zero state
    torch.testing.assert_close(cell(x[0], h[0]), _reference(cell, x[:1], h[:1])[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cell(x), _reference(cell, x, torch.zeros(4, H)), rtol=1e-5, atol=1e-6)
    assert (cell.norm is not None) == norm and cell.linear.bias is not None  # DreamerV2: use_bias=norm is not None


def test_update_bias_keeps_most_of_the_state_at_initialisation():
    torch.manual_seed(0)
    cell = LayerNormGRUCell(D, H)
    assert cell.norm.eps == 1e-3 and torch.equal(cell.linear.bias, torch.zeros(3 * H))  # Keras defaults
    with torch.no_grad():  # zero pre-activations: reset = 0.5, candidate tanh(0) = 0, update = sigmoid(-1)
        cell.linear.weight.zero_()
    h = torch.randn(3, H)
    update = torch.sigmoid(torch.tensor(-1.0))
    torch.testing.assert_close(cell(torch.randn(3, D), h), (1 - update) * h)
    cell.update_bias = 0.0
    torch.testing.assert_close(cell(torch.randn(3, D), h), 0.5 * h)
    # at the Glorot initialisation the LayerNorm'd update pre-activations are ~N(0, 1): gate mean ~ E[sigmoid(z - 1)]
    cell = LayerNormGRUCell(64, 256)
    with torch.no_grad():
        parts = cell.norm(cell.linear(torch.randn(512, 64 + 256)))
    gate = torch.sigmoid(parts[:, 512:] + cell.update_bias).mean()  # E[sigmoid(z - 1)] = 0.30 for z ~ N(0, 1)
    assert abs(float(gate) - 0.30) < 0.03


def _old_rssm(latent):
    """The RSSM's networks as they were before the ``gru`` option, built in the RSSM's order."""
    if latent == "categorical":
        prior = RSSMPriorV3(action_shape=(A,), action_dim=A, hidden_dim=8, rnn_hidden_dim=8, num_categoricals=3,
                            num_classes=4, unimix=0.0)
        post = RSSMPosteriorV3(hidden_dim=8, num_categoricals=3, num_classes=4, rnn_hidden_dim=8, obs_embed_dim=E,
                               unimix=0.0)
    else:
        prior = GaussianPrior(action_dim=A, state_dim=5, belief_dim=8, hidden_dim=8)
        post = GaussianPosterior(embed_dim=E, state_dim=5, belief_dim=8, hidden_dim=8)
    return nn.ModuleDict({"prior_net": prior, "posterior_net": post})


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
def test_torch_gru_is_the_rssm_of_before(latent):
    """gru="torch": same modules, state-dict keys and (same seed) initial weights as before the option."""
    torch.manual_seed(0)
    rssm = RSSM(action_dim=A, embed_dim=E, belief_dim=8, hidden_dim=8, latent=latent, num_categoricals=3,
                num_classes=4, stoch_dim=5, gru="torch")
    torch.manual_seed(0)
    old = _old_rssm(latent)
    assert type(rssm.prior_net.rnn) is nn.GRUCell
    new_sd, old_sd = rssm.state_dict(), old.state_dict()
    assert list(new_sd) == list(old_sd)
    assert [k for k in new_sd if k.startswith("prior_net.rnn.")] == [
        "prior_net.rnn.weight_ih", "prior_net.rnn.weight_hh", "prior_net.rnn.bias_ih", "prior_net.rnn.bias_hh"]
    for key in old_sd:
        assert torch.equal(new_sd[key], old_sd[key]), key


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
def test_layer_norm_rssm_has_the_cell_and_trains_it(latent):
    torch.manual_seed(0)
    wm = make_world_model("tiny", action_dim=A, latent=latent)
    cell = wm.rssm.prior_net.rnn
    assert isinstance(cell, LayerNormGRUCell) and wm.config.gru == "layer_norm" == wm.rssm.gru
    assert (cell.input_size, cell.hidden_size) == (wm.config.hidden_dim, wm.config.belief_dim)
    assert {k for k in wm.state_dict() if k.startswith("rssm.prior_net.rnn.")} == {
        "rssm.prior_net.rnn.linear.weight", "rssm.prior_net.rnn.linear.bias",
        "rssm.prior_net.rnn.norm.weight", "rssm.prior_net.rnn.norm.bias"}
    g = torch.Generator().manual_seed(1)
    is_first = torch.zeros(2, 4, 1, dtype=torch.bool)
    is_first[:, 0] = True
    batch = TensorDict({"pixels": torch.randint(0, 256, (2, 4, 3, 64, 64), dtype=torch.uint8, generator=g),
                        "prev_action": torch.randn(2, 4, A, generator=g), "is_first": is_first,
                        "reward": torch.randn(2, 4, 1, generator=g)}, [2, 4])
    loss_fn = WorldModelLoss(wm, free_nats=0.0)  # no free nats: the KL gradient reaches the prior's cell
    out = loss_fn(batch.clone())
    sum(v for k, v in out.items() if k.startswith("loss_")).backward()
    for name, p in cell.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    torch.optim.Adam(wm.parameters(), lr=1e-3).step()
    assert all(not torch.equal(before[k], v) for k, v in cell.state_dict().items())


def test_bad_gru_is_rejected_and_saved_configs_without_it_are_torch():
    with pytest.raises(ValueError, match=r"gru must be one of \('layer_norm', 'torch'\), got 'lstm'"):
        WorldModelConfig(gru="lstm")
    with pytest.raises(ValueError, match="gru"):
        WorldModelConfig.from_preset("tiny", gru="LayerNorm")
    with pytest.raises(ValueError, match="gru"):
        RSSM(action_dim=A, embed_dim=E, gru="block")
    cfg = WorldModelConfig.from_preset("tiny")
    assert cfg.gru == "layer_norm" and WorldModelConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    old = dataclasses.asdict(cfg)
    del old["gru"]  # a checkpoint written before the option
    assert WorldModelConfig.from_dict(old) == dataclasses.replace(cfg, gru="torch")
    assert type(WorldModelConfig.from_dict(old).build(action_dim=A).rssm.prior_net.rnn) is nn.GRUCell
