"""Vid2ActAgent and build_agent: every variant builds from Hydra configs, one update trains the right parts."""

import pytest
import torch
from hydra import compose, initialize_config_module
from tensordict import TensorDict

from vid2act.agents.schemas import register_configs
from vid2act.agents.train import build_agent
from vid2act.agents.vid2act import Vid2ActAgent
from vid2act.components.data import OfflineDataset
from vid2act.components.transfer.teacher_bank import teacher_checkpoint
from vid2act.components.world_model import WorldModelConfig

register_configs()
A, N = 2, 2
SOURCES = ("src-a", "src-b")


def _rows(t, action_dim=A, seed=0):
    g = torch.Generator().manual_seed(seed)
    is_first, is_last = torch.zeros(t, 1, dtype=torch.bool), torch.zeros(t, 1, dtype=torch.bool)
    is_first[0] = is_last[-1] = True
    prev_action = torch.rand(t, action_dim, generator=g) * 2 - 1
    prev_action[0] = 0
    return TensorDict(
        {
            "pixels": torch.randint(0, 256, (t, 3, 64, 64), dtype=torch.uint8, generator=g),
            "prev_action": prev_action,
            "reward": torch.rand(t, 1, generator=g),
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": torch.zeros(t, 1, dtype=torch.bool),
            "success": torch.zeros(t, 1, dtype=torch.bool),
        },
        [t],
    )


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A tiny mixture teacher checkpoint over two small source datasets of random frames."""
    root = tmp_path_factory.mktemp("sources")
    for i, name in enumerate(SOURCES):
        ds = OfflineDataset.create(root / name, task=f"dmc/{name}", suite="dmc", action_dim=A, image_size=64,
                                   behaviour_policy="random")
        ds.append_episode(_rows(20, seed=i))
    model = WorldModelConfig.from_preset("tiny").build(action_dim=A, label_dim=N, reward_head=False)
    state = teacher_checkpoint(model, layout="mixture", source_tasks=SOURCES, action_dim=A, image_size=64,
                               data_root=str(root), render_quality="fast")  # the datasets' (default) quality
    path = root / "teachers.pt"
    torch.save(state, path)
    return path


def _cfg(agent, *overrides):
    with initialize_config_module(config_module="vid2act.configs", version_base="1.3"):
        return compose(config_name="train", overrides=[f"agent={agent}", "model=tiny", "logger=csv", *overrides])


def _batch(b=2, t=6):
    return torch.stack([_rows(t, seed=10 + i) for i in range(b)])


@pytest.mark.parametrize(
    "agent, kind, guidance",
    [("vid2act", Vid2ActAgent, True), ("uniform_weights", Vid2ActAgent, True), ("no_guidance", Vid2ActAgent, False)],
)
def test_every_vid2act_variant_builds_and_updates(teacher, agent, kind, guidance):
    cfg = _cfg(agent, f"teacher={teacher}", "agent.replay_batch=2", "agent.replay_seq_len=5")
    learner = build_agent(cfg, A, 64, torch.device("cpu"))
    assert isinstance(learner, kind) and (learner.source_data is not None) == guidance
    teacher_before = [p.clone() for p in learner.teachers.parameters()]
    weights_before = [p.clone() for p in learner.similarity.parameters()]
    metrics = learner.update(_batch())
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert {f"similarity_weight/{s}" for s in SOURCES} <= metrics.keys() and "loss_distill" in metrics
    assert sum(metrics[f"similarity_weight/{s}"] for s in SOURCES) == pytest.approx(1.0, abs=1e-5)
    errors = [metrics[f"distill_error/{s}"] for s in SOURCES]  # each teacher's distance to the student
    assert min(errors) > 0
    if agent == "uniform_weights":  # w = 1/N everywhere: the loss is alpha times the mean distance
        assert metrics["loss_distill"] == pytest.approx(learner.alpha * sum(errors) / len(errors), rel=1e-4)
    assert ("loss_replay_reco" in metrics) == guidance
    # teachers frozen; learned weights move, uniform weights have nothing to learn
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, learner.teachers.parameters()))
    moved = any(not torch.equal(a, b) for a, b in zip(weights_before, learner.similarity.parameters()))
    assert moved == (agent != "uniform_weights")


def test_acting_policy_selects_a_source_every_step(teacher):
    learner = build_agent(_cfg("vid2act", f"teacher={teacher}"), A, 64, torch.device("cpu"))
    policy = learner.policy(explore=False)
    td = TensorDict({"pixels": torch.zeros(3, 3, 64, 64, dtype=torch.uint8),
                     "is_init": torch.ones(3, 1, dtype=torch.bool)}, [3])
    out = policy(td)
    assert out["action"].shape == (3, A) and out["task_index"].shape == (3,)
    assert out["similarity_weights"].sum(-1).allclose(torch.ones(3))
    assert out["teacher_belief"].shape[:2] == (3, N)  # carried to the next step
    assert learner.acting_metrics(out) == {"selected_task_count/src-a": float((out["task_index"] == 0).sum()),
                                           "selected_task_count/src-b": float((out["task_index"] == 1).sum())}


def test_finetune_starts_from_the_teacher_weights(teacher):
    learner = build_agent(_cfg("finetune", f"teacher={teacher}"), A, 64, torch.device("cpu"))
    ckpt = torch.load(teacher, weights_only=True)["weights"]
    dec = "decoder." + next(k.split("decoder.", 1)[1] for k in ckpt if k.startswith("decoder."))
    assert torch.equal(learner.world_model.state_dict()[dec], ckpt[dec])


def test_student_state_teacher_input_needs_equal_latent_sizes(teacher):
    cfg = _cfg("vid2act", f"teacher={teacher}", "agent.teacher_input=student_state", "model.belief_dim=48")
    with pytest.raises(ValueError, match="student"):
        build_agent(cfg, A, 64, torch.device("cpu"))
    ok = build_agent(_cfg("vid2act", f"teacher={teacher}", "agent.teacher_input=student_state",
                          "agent.guidance=false"), A, 64, torch.device("cpu"))
    assert "loss_distill" in ok.update(_batch())


@pytest.mark.parametrize(
    "overrides, action_dim, image_size, error, match",
    [
        ((), A, 64, ValueError, "needs a pretrained teacher"),
        (("teacher=/nonexistent/teachers.pt",), A, 64, FileNotFoundError, "no checkpoint"),
        (("teacher={teacher}",), A + 1, 64, ValueError, "action_dim"),
        (("teacher={teacher}",), A, 84, ValueError, "image_size"),
    ],
)
def test_bad_teacher_setups_fail_before_training(teacher, overrides, action_dim, image_size, error, match):
    cfg = _cfg("vid2act", *(o.format(teacher=teacher) for o in overrides))
    with pytest.raises(error, match=match):
        build_agent(cfg, action_dim, image_size, torch.device("cpu"))


def test_teacher_embedding_cache_equals_encoding_and_feeds_the_update(teacher):
    cfg = _cfg("vid2act", f"teacher={teacher}", "agent.cache_teacher_embed=float32", "agent.replay_batch=2",
               "agent.replay_seq_len=5")
    learner = build_agent(cfg, A, 64, torch.device("cpu"))
    rows = _rows(7)
    cached = learner.row_transform()(rows.clone())["teacher_embed"]  # [T, N, E]
    expected = learner.teachers.encode(rows["pixels"]).movedim(0, -2)
    assert cached.shape == (7, N, learner.teachers.embed_dim) and torch.allclose(cached, expected, atol=1e-6)
    source_rows = learner.source_data.rows(1)  # teacher 1's embedding of source 1's frames
    assert torch.allclose(source_rows["teacher_embed"], learner.teachers.encode(source_rows["pixels"])[1], atol=1e-6)
    # the update reads the cache: the distillation loss is the same as when the frames are encoded again
    batch = _batch()
    with_cache = learner.row_transform()(batch.clone())
    learner.teachers.sample = False
    torch.manual_seed(0)
    a = learner.extra_model_losses(learner.world_model(with_cache))["loss_distill"]
    torch.manual_seed(0)
    b = learner.extra_model_losses(learner.world_model(batch.clone()))["loss_distill"]
    assert torch.allclose(a, b, atol=1e-5)


def test_no_teacher_embedding_cache_when_disabled(teacher):
    learner = build_agent(_cfg("vid2act", f"teacher={teacher}", "agent.cache_teacher_embed=none"), A, 64,
                          torch.device("cpu"))
    assert learner.row_transform() is None and "teacher_embed" not in learner.source_data.rows(0).keys()


# ---------------------------------------------------------------------------- render_quality
@pytest.mark.parametrize("agent", ["vid2act", "no_guidance", "finetune"])
def test_target_render_quality_must_match_the_teachers(teacher, agent):
    with pytest.raises(ValueError) as info:
        build_agent(_cfg(agent, f"teacher={teacher}", "env.render_quality=full"), A, 64, torch.device("cpu"))
    message = str(info.value)
    assert "\n" not in message and "render_quality differs" in message and str(teacher) in message
    assert "env.render_quality='full'" in message and "'fast' frames" in message
    assert "set env.render_quality=fast" in message


def test_teacher_checkpoint_without_render_quality_is_full_and_source_data_must_match(teacher, tmp_path):
    state = torch.load(teacher, weights_only=True)
    del state["render_quality"]  # a checkpoint written before the field: "full" teachers
    legacy = tmp_path / "legacy_teachers.pt"
    torch.save(state, legacy)
    with pytest.raises(ValueError, match="were pretrained on 'full' frames; set env.render_quality=full"):
        build_agent(_cfg("vid2act", f"teacher={legacy}"), A, 64, torch.device("cpu"))
    # the teachers now agree with the env, but their source datasets (data_root) hold "fast" frames
    with pytest.raises(ValueError) as info:
        build_agent(_cfg("vid2act", f"teacher={legacy}", "env.render_quality=full"), A, 64, torch.device("cpu"))
    message = str(info.value)
    assert "\n" not in message and "source datasets under" in message and "hold 'fast' frames" in message
    assert "env.render_quality='full'" in message and "source_data=" in message
    # no_guidance loads no source data: only the teachers are checked
    assert build_agent(_cfg("no_guidance", f"teacher={legacy}", "env.render_quality=full"), A, 64,
                       torch.device("cpu")).source_data is None


def test_render_quality_mismatch_stops_run_training_before_any_step(teacher, tmp_path, monkeypatch):
    import vid2act.agents.trainer
    from vid2act.agents.train import run_training

    def no_loop(*args, **kwargs):
        raise AssertionError("the train loop started despite the render-quality mismatch")

    monkeypatch.setattr(vid2act.agents.trainer, "train_loop", no_loop)
    cfg = _cfg("vid2act", f"teacher={teacher}", "env=dmc/reacher-easy", "env.render_quality=full", "progress=false",
               "device=cpu")
    with pytest.raises(ValueError, match="render_quality differs"):
        run_training(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "config.yaml").exists() and not (tmp_path / "run" / "checkpoint.pt").exists()
