"""Gradient attacks, their cross-check, and adversarial training's pieces."""
import pytest
import torch

from model import build_model
from outwit import cli
from outwit.ml import adversarial_training, data, robustness, training
from outwit.ml.attacks import Attack, pgd_in_current_mode, robust_accuracy
from outwit.ml.checkpoints import load


@pytest.fixture(scope="module")
def base():
    model, _ = load("models/base.safetensors")
    return model


@pytest.fixture(scope="module")
def test_digits():
    x, y = data.load_sample("test").tensors()
    pick = data.fixed_subset(len(y), 100)  # the split is ordered by digit: a random hundred, not the first
    return x[pick], y[pick]


@pytest.mark.parametrize("attack", [Attack("fgsm", 0.1), Attack("pgd", 0.1, steps=5, restarts=2),
                                    Attack("noise", 0.1), Attack("apgd", 0.1, steps=5)], ids=lambda a: a.name)
def test_every_attack_stays_within_epsilon_and_the_pixel_range(base, test_digits, attack):
    x, y = test_digits[0][:20], test_digits[1][:20]
    x_adv = attack(base, x, y, torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).any()


def test_pgd_is_at_least_as_strong_as_fgsm_and_agrees_with_torchattacks(base, test_digits):
    x, y = test_digits
    eps = 0.03  # where the standard model is partly right, so that the attacks can differ
    fgsm = robust_accuracy(base, x, y, Attack("fgsm", eps))
    pgd = robust_accuracy(base, x, y, Attack("pgd", eps, steps=10, step_size=eps / 4))
    apgd = robust_accuracy(base, x, y, Attack("apgd", eps, steps=10))
    assert pgd <= fgsm < 1.0
    assert abs(pgd - apgd) <= 0.05, (pgd, apgd)


def test_pgd_keeps_each_examples_first_fooling_iterate_and_is_no_weaker_than_the_last_iterate(base, test_digits):
    x, y = test_digits
    eps, step = 0.05, 0.05 / 4
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        base.eval()
        kept = pgd_in_current_mode(base, x, y, eps, step, 20, True, generator, until_fooled=True)
        last = pgd_in_current_mode(base, x, y, eps, step, 20, True, torch.Generator().manual_seed(0))
        fooled_kept, fooled_last = base(kept).argmax(1) != y, base(last).argmax(1) != y
    assert (kept - x).abs().max() <= eps + 1e-6
    assert fooled_kept.sum() >= fooled_last.sum() and fooled_kept.any() and not fooled_kept.all()
    assert not torch.equal(kept, last)  # the same start and steps: the fooled ones stopped early
    # a stopped example moved no further than it had to: never farther from x than the full search took it
    assert ((kept - x).abs().flatten(1).sum(1)[fooled_kept] <= (last - x).abs().flatten(1).sum(1)[fooled_kept] + 1e-4
            ).float().mean() > 0.9


def test_a_standard_model_falls_towards_zero_as_epsilon_grows(base, test_digits):
    """No gradient masking: a bigger budget never helps the model, and 0.2 leaves a standard CNN nothing."""
    x, y = test_digits
    accuracy = [robust_accuracy(base, x, y, Attack("pgd", eps, steps=20, step_size=max(2.5 * eps / 20, 1e-3)))
                for eps in (0.0, 0.02, 0.05, 0.1, 0.2)]
    assert accuracy[0] >= 0.97
    assert all(a >= b for a, b in zip(accuracy, accuracy[1:])), accuracy
    assert accuracy[-2] <= 0.15 and accuracy[-1] <= 0.02, accuracy
    assert robust_accuracy(base, x, y, Attack("noise", 0.05)) >= accuracy[2]  # noise is no stronger than PGD


def test_attacking_leaves_the_model_as_it_was(test_digits):
    model = build_model("cnn")
    model.train()(torch.rand(16, 1, 28, 28))  # BatchNorm statistics away from their defaults
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Attack("pgd", 0.1, steps=3)(model, *test_digits)
    assert model.training  # the mode it had
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # running statistics included
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("kwargs, name", [({"kind": "cw"}, "kind"), ({"eps": 1.5}, "eps"), ({"steps": 0}, "steps"),
                                          ({"step_size": 0}, "step_size"), ({"restarts": 0}, "restarts")])
def test_bad_attack_settings_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Attack(**kwargs)


def test_attack_names_say_the_search():
    assert Attack("pgd", 0.3, steps=100, restarts=5).name == "pgd-100x5@0.3"
    assert Attack("fgsm", 0.1).name == "fgsm@0.1"


def test_report_cross_checks_each_epsilon(base, test_digits):
    x, y = test_digits[0][:40], test_digits[1][:40]
    figures = robustness.report(base, x, y, [0.02, 0.3], pgd=Attack("pgd", 0.3, steps=10, step_size=0.05),
                                apgd_steps=10)
    assert figures["clean"] >= 0.95
    low, high = figures["attacks"]["0.02"], figures["attacks"]["0.3"]
    assert set(low) >= {"fgsm", "pgd", "apgd", "noise", "worst", "noise_beats_pgd", "pgd_minus_apgd"}
    assert low["pgd"]["attack"] == "pgd-10x1@0.02"
    assert low["worst"] <= min(low["pgd"]["accuracy"], low["apgd"]["accuracy"], low["fgsm"]["accuracy"])
    assert high["pgd"]["accuracy"] == 0 and not high["noise_beats_pgd"]


def test_one_drawing_attacked_stays_on_the_png_grid_within_epsilon(base, test_digits):
    x, y = test_digits
    attacked = robustness.attack_input(base, x[0], int(y[0]), Attack("pgd", 0.2, steps=10, step_size=0.05))
    diff = attacked.adversarial.astype(int) - attacked.clean.astype(int)
    assert abs(diff).max() <= 0.2 * 255
    assert attacked.clean_probs.argmax() == y[0] and attacked.adversarial_probs.argmax() != y[0]
    assert attacked.perturbation.shape == (28, 28) and attacked.perturbation.min() < 128 < attacked.perturbation.max()


def test_training_perturbations_stay_within_epsilon():
    model, x, y = build_model("seed"), torch.rand(8, 1, 28, 28), torch.arange(8)
    assert adversarial_training.perturbation(model, x, y, "none", 0.3) is x
    for mode in ("fgsm-rs", "pgd"):
        x_adv = adversarial_training.perturbation(model, x, y, mode, 0.3, pgd_steps=2, generator=torch.Generator())
        assert (x_adv - x).abs().max() <= 0.3 + 1e-6 and not torch.equal(x_adv, x)
    with pytest.raises(ValueError, match="'free'"):
        adversarial_training.perturbation(model, x, y, "free", 0.3)


def test_trades_adds_beta_times_the_divergence_its_search_finds_to_the_clean_loss():
    torch.manual_seed(0)
    model, x, y = build_model("seed").eval(), torch.rand(8, 1, 28, 28), torch.arange(8)
    clean = torch.nn.functional.cross_entropy(model(x), y)
    loss = {beta: adversarial_training.trades_loss(model, x, y, 0.3, steps=3, beta=beta,
                                                   generator=torch.Generator().manual_seed(0)) for beta in (1.0, 6.0)}
    assert loss[1.0] > clean  # the search found outputs that differ from the clean ones
    assert (loss[6.0] - clean).item() == pytest.approx(6 * (loss[1.0] - clean).item(), rel=1e-4)
    batch = adversarial_training.batch_loss(model, x, y, adversarial_training.AdversarialTraining(mode="trades"),
                                            eps=0.0)
    assert batch.item() == pytest.approx(clean.item())  # at epsilon 0 (the ramp's start) the clean loss alone


class _ScriptedChecks(adversarial_training.AdversarialTraining):
    """The PGD check's answers are scripted, to drive the guard through a collapse."""

    def check(self, model, x, y):
        self.weights.append({k: v.clone() for k, v in model.state_dict().items()})
        return self.answers.pop(0)


@pytest.mark.parametrize("ema", [None, 0.9])  # the best weights are kept over the moving average too
def test_a_collapse_of_the_pgd_check_restores_the_best_weights_and_stops(ema):
    adversarial = _ScriptedChecks(mode="fgsm-rs", eps=0.3, collapse=0.2, check_size=8)
    object.__setattr__(adversarial, "answers", [0.5, 0.7, 0.6, 0.3, 0.9])
    object.__setattr__(adversarial, "weights", [])
    x, y = data.load_sample("train").tensors()
    model = build_model("seed")
    result = training.train(model, x[:64], y[:64], epochs=10, lr=1e-3, batch_size=16, generator=torch.Generator(),
                           augment=False, adversarial=adversarial, ema=ema)
    assert result["stopped_early"] and [c["pgd"] for c in result["pgd_checks"]] == [0.5, 0.7, 0.6, 0.3]
    assert result["steps"] < 40  # stopped after the collapse, not at the end of the ten epochs
    best = adversarial.weights[1]  # the weights the 0.7 check saw
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_adversarial_training_settings_are_checked():
    for kwargs, name in (({"mode": "free"}, "mode"), ({"eps": 0}, "eps"), ({"eps_warmup": 1}, "eps_warmup"),
                         ({"beta": 0}, "beta")):
        with pytest.raises(ValueError, match=name):
            adversarial_training.AdversarialTraining(**kwargs)
    ramp = adversarial_training.AdversarialTraining(eps=0.3, eps_warmup=0.5)
    assert ramp.eps_at(0, 100) == pytest.approx(0.006) and ramp.eps_at(49, 100) == pytest.approx(0.3)
    assert ramp.eps_at(80, 100) == 0.3


# ---------------------------------------------------------------------------------------------- command line
from tests.unit.test_data_and_trainer import run_cli  # noqa: E402


@pytest.mark.parametrize("arch", ["seed", "cnn", "vit"])
@pytest.mark.parametrize("mode", ["fgsm-rs", "pgd", "trades"])
def test_cli_trains_every_architecture_adversarially(tmp_path, capsys, arch, mode):
    out = tmp_path / f"{arch}.safetensors"
    code, result, err = run_cli(capsys, "pretrain", "--arch", arch, "--adv-train", mode, "--eps", "0.2",
                                "--pgd-steps", "2", "--max-steps", "3", "--robust-eval", "10", "--out", out)
    assert code == 0 and result["arch"] == arch and result["steps"] == 3 and out.exists()
    assert result["robust"]["dataset"] == "mnist-sample-5k/test, 10 images under pgd-40x1@0.2"
    assert result["robust"]["size"] == 10
    assert "train:" in err  # the progress bar
    meta = load(out)[1]
    assert (meta.recipe["adv_train"], meta.recipe["mode"], meta.recipe["eps"]) == (mode, mode, 0.2)
    assert meta.metrics.top1("robust") == result["robust"]["top1"]


def test_cli_evaluate_reports_robust_accuracy_cross_checked(capsys):
    code, result, _ = run_cli(capsys, "evaluate", "--checkpoint", "models/base.safetensors", "--attack", "pgd",
                              "--eps", "0.05,0.3", "--limit", "30", "--steps", "10", "--step-size", "0.05",
                              "--apgd-steps", "5")
    assert code == 0 and result["top1"] >= 0.98  # the clean figures on the whole test split, as before
    robust = result["robustness"]
    assert (robust["dataset"], robust["size"]) == ("mnist-sample-5k/test", 30)
    assert robust["clean"] > 0.9  # a random 30, not the first 30 (all zeros)
    assert set(robust["attacks"]) == {"0.05", "0.3"}
    assert robust["attacks"]["0.3"]["pgd"]["accuracy"] == 0.0  # a standard CNN has nothing left at 0.3
    assert robust["attacks"]["0.3"]["pgd"]["attack"] == "pgd-10x1@0.3"


def test_cli_bad_epsilon_list_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--checkpoint", "models/base.safetensors", "--attack", "pgd", "--eps", "0.1,big"])
    assert "'0.1,big' is not a comma-separated list of numbers" in capsys.readouterr().err


def test_cli_attack_writes_a_grid_of_the_ten_digits(tmp_path, capsys):
    out = tmp_path / "grid.png"
    code, result, _ = run_cli(capsys, "attack", "--checkpoint", "models/seed.safetensors", "--eps", "0.2",
                              "--steps", "5", "--out", out)
    assert code == 0 and result["attack"] == "pgd-5x1@0.2"
    from PIL import Image
    image = Image.open(out)
    assert image.size == (110 + 10 * 84, 3 * (84 + 18))
