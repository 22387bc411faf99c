"""Training steps (`eval --step`), layer_norm's closed-form rule and dropout masks.

Every expected number comes from a plain torch.optim loop written here, or from the issue's
hand-computed values; never from gradexplain itself.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, run_cli

def close(value, expected, tol=1e-12) -> bool:
    """A JSON value (nested lists) against a tensor."""
    return torch.allclose(torch.tensor(value, dtype=torch.float64), expected.detach().double(), rtol=0, atol=tol)


LINE = ["eval", "z = x*w + b; mse_loss(z, t)", "x=5", "t=0", "w=1", "b=3", "--const", "x,t", "--no-numeric"]


def torch_loop(make_opt, steps, zero_grad=True, make_sched=None):
    """(loss, w.grad, b.grad, lr, w after, b after) per step of the seed's linear model."""
    x, t = torch.tensor(5.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    w = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    opt = make_opt([w, b])
    sched = make_sched(opt) if make_sched else None
    rows = []
    for _ in range(steps):
        if zero_grad:
            opt.zero_grad()
        loss = F.mse_loss(x * w + b, t)
        loss.backward()
        lr = opt.param_groups[0]["lr"]
        grads = (w.grad.item(), b.grad.item())
        opt.step()
        if sched:
            sched.step()
        rows.append((loss.item(), *grads, lr, w.item(), b.item()))
    return rows


def steps_of(*extra):
    r = run_cli(*LINE, *extra, "--json")
    assert r.code == 0, r.stderr
    return r.json()


def assert_matches(doc, rows, tol=1e-9):
    assert len(doc["steps"]) == len(rows)
    for k, (s, (loss, gw, gb, lr, w, b)) in enumerate(zip(doc["steps"], rows), start=1):
        assert s["step"] == k
        assert s["lr"] == pytest.approx(lr, abs=tol)
        assert s["loss"] == pytest.approx(loss, rel=tol)
        pw, pb = s["params"]["w"], s["params"]["b"]
        assert (pw["grad"], pb["grad"]) == pytest.approx((gw, gb), rel=tol)
        assert (pw["after"], pb["after"]) == pytest.approx((w, b), rel=tol, abs=tol)
        assert pw["update"] == pytest.approx(pw["after"] - pw["value"], abs=tol)
        assert s["agree"] is True
        assert pw["formula"]["agree"] and pw["symbolic"]["agree"]


def test_sgd_two_steps_match_the_issue_and_torch_optim():
    doc = steps_of("--step", "sgd", "--lr", "0.01", "--steps", "2")
    s1, s2 = doc["steps"]
    # by hand: z = 5w + b; loss = z²; dL/dw = 2·z·5, dL/db = 2·z
    assert s1["loss"] == pytest.approx(64.0)
    assert (s1["params"]["w"]["grad"], s1["params"]["w"]["after"]) == pytest.approx((80.0, 0.2))
    assert (s1["params"]["b"]["grad"], s1["params"]["b"]["after"]) == pytest.approx((16.0, 2.84))
    assert s1["params"]["w"]["update"] == pytest.approx(-0.8)
    assert s2["loss"] == pytest.approx(14.7456)
    assert (s2["params"]["w"]["grad"], s2["params"]["w"]["after"]) == pytest.approx((38.4, -0.184))
    assert (s2["params"]["b"]["grad"], s2["params"]["b"]["after"]) == pytest.approx((7.68, 2.7632))
    assert_matches(doc, torch_loop(lambda p: torch.optim.SGD(p, lr=0.01), 2))
    assert doc["agree"] is True and doc["training"]["optimizer"] == "sgd"


def test_no_zero_grad_accumulates_and_is_marked():
    doc = steps_of("--step", "sgd", "--lr", "0.01", "--steps", "3", "--no-zero-grad")
    assert_matches(doc, torch_loop(lambda p: torch.optim.SGD(p, lr=0.01), 3, zero_grad=False))
    s1, s2 = doc["steps"][:2]
    assert s1["params"]["w"]["accumulated"] is False
    w, b = s2["params"]["w"], s2["params"]["b"]
    assert (w["grad"], b["grad"]) == pytest.approx((118.4, 23.68))  # 80 + 38.4, 16 + 7.68
    assert w["accumulated"] is True and b["accumulated"] is True
    assert (w["step_grad"], w["carried"]) == pytest.approx((38.4, 80.0))
    assert (b["step_grad"], b["carried"]) == pytest.approx((7.68, 16.0))
    zeroed = torch_loop(lambda p: torch.optim.SGD(p, lr=0.01), 3)
    for s, row in zip(doc["steps"], zeroed):
        assert s["params"]["w"]["zeroed"]["grad"] == pytest.approx(row[1])
        assert s["params"]["w"]["zeroed"]["after"] == pytest.approx(row[4])
    assert any("zero_grad() was not called" in n for n in doc["notes"])


def test_adam_two_steps():
    doc = steps_of("--step", "adam", "--lr", "0.1", "--steps", "2")
    assert [s["params"]["w"]["after"] for s in doc["steps"]] == pytest.approx([0.9, 0.80028], abs=5e-6)
    assert [s["params"]["b"]["after"] for s in doc["steps"]] == pytest.approx([2.9, 2.80028], abs=5e-6)
    assert_matches(doc, torch_loop(lambda p: torch.optim.Adam(p, lr=0.1), 2))
    lines = doc["steps"][0]["params"]["w"]["formula"]["lines"]
    assert lines[0] == "m ← β₁·m + (1 − β₁)·g = 0.9·0 + 0.1·80 = 8"
    assert lines[2] == "m̂ = m/(1 − β₁^1) = 8/(1 − 0.9^1) = 80"


@pytest.mark.parametrize("extra, make", [
    (["--step", "sgd", "--lr", "0.01", "--momentum", "0.9", "--nesterov", "--weight-decay", "0.1"],
     lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (["--step", "adamw", "--lr", "0.05", "--betas", "0.8,0.99", "--weight-decay", "0.1"],
     lambda p: torch.optim.AdamW(p, lr=0.05, betas=(0.8, 0.99), weight_decay=0.1)),
    (["--step", "rmsprop", "--lr", "0.01", "--momentum", "0.5", "--eps", "1e-6"],
     lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5, eps=1e-6)),
    (["--step", "adagrad", "--lr", "0.1", "--weight-decay", "0.01"],
     lambda p: torch.optim.Adagrad(p, lr=0.1, weight_decay=0.01)),
])
def test_other_optimizers_follow_torch_optim_and_their_formula(extra, make):
    assert_matches(steps_of(*extra, "--steps", "3"), torch_loop(make, 3))


@pytest.mark.parametrize("spec, make", [
    ("step:step_size=1,gamma=0.5", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5)),
    ("exponential:gamma=0.9", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)),
    ("cosine:T_max=3", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3)),
])
def test_schedules_set_every_steps_lr(spec, make):
    doc = steps_of("--step", "sgd", "--lr", "0.01", "--steps", "5", "--schedule", spec)
    assert_matches(doc, torch_loop(lambda p: torch.optim.SGD(p, lr=0.01), 5, make_sched=make))
    if spec.startswith("step"):
        assert [s["lr"] for s in doc["steps"]] == pytest.approx([0.01, 0.005, 0.0025, 0.00125, 0.000625])


def test_text_writes_each_update_out():
    r = run_cli(*LINE, "--step", "sgd", "--lr", "0.01", "--steps", "2")
    assert r.code == 0, r.stderr
    assert "w ← w − lr·g = 1 − 0.01·80 = 0.2" in r.stdout
    assert "b ← b − lr·g = 2.84 − 0.01·7.68 = 2.7632" in r.stdout
    many = run_cli(*LINE, "--step", "sgd", "--lr", "0.01", "--steps", "8", "--schedule", "exponential:gamma=0.5",
                   "--no-zero-grad")
    assert many.code == 0, many.stderr
    assert "all steps" in many.stdout and "⚠ accumulated" in many.stdout
    assert any(ch in many.stdout for ch in "▁▂▃▄▅▆▇█")


@pytest.mark.parametrize("args, message", [
    (["--lr", "0.1"], "--lr needs --step"),
    (["--step", "lbfgs"], "unknown optimizer"),
    (["--step", "adam", "--momentum", "0.9"], "--momentum does not apply to adam"),
    (["--step", "sgd", "--schedule", "step:gamma=0.5"], "needs step_size"),
    (["--step", "sgd", "--schedule", "warp:x=1"], "unknown schedule"),
    (["--step", "sgd", "--steps", "0"], "--steps must be between"),
    (["--step", "adam", "--betas", "0.9"], "--betas"),
])
def test_bad_training_options_exit_2(args, message):
    r = run_cli(*LINE, *args)
    assert r.code == 2 and message in r.stderr, r.stderr


def test_step_needs_a_scalar_loss():
    r = run_cli("eval", "x*w", "x=1,2", "w=3", "--const", "x", "--step", "sgd")
    assert r.code == 2 and "scalar loss" in r.stderr


def test_layer_norm_gradient_torch_and_sympy_agree():
    r = run_cli("eval", "(layer_norm(x, [3]) * c).sum()", "x=1,2,4", "c=1,0,-1", "--const", "c", "--json")
    assert r.code == 0, r.stderr
    g = r.json()["grads"]["x"]
    x = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64, requires_grad=True)
    (F.layer_norm(x, [3]) * torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)).sum().backward()
    assert g["torch"] == pytest.approx(x.grad.tolist(), abs=1e-12)
    assert g["torch"] == pytest.approx([0.114545, -0.171809, 0.057265], abs=1e-6)
    assert g["symbolic"]["value"] == pytest.approx(x.grad.tolist(), abs=1e-12) and g["agree"] is True
    assert len(g["symbolic"]["expr"]) < 400  # the closed-form rule, not the expanded composite


def test_layer_norm_weight_bias_over_a_batch():
    x, c = [[1.0, 2.0, 4.0], [0.0, -1.0, 3.0]], [[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]]
    w, b = [0.5, 2.0, -1.0], [0.1, 0.2, 0.3]
    r = run_cli("eval", "(layer_norm(x, [3], w, b) * c).sum()", f"x={x}".replace(" ", ""),
                f"c={c}".replace(" ", ""), "w=0.5,2,-1", "b=0.1,0.2,0.3", "--const", "c", "--json", "--no-numeric")
    assert r.code == 0, r.stderr
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, w, b)]
    (F.layer_norm(leaves[0], [3], leaves[1], leaves[2]) * torch.tensor(c, dtype=torch.float64)).sum().backward()
    for name, leaf in zip("xwb", leaves):
        assert close(r.json()["grads"][name]["symbolic"]["value"], leaf.grad)


MLP = ("h = layer_norm(x, [3], ln_w, ln_b); a = relu(linear(h, W1, b1)); d = dropout(a, 0.5); "
       "y = linear(d, W2, b2); mse_loss(y, t)")
MLP_VALUES = {"x": [[1, 2, 3], [0, -1, 2]], "t": [[1], [0]], "ln_w": [1, 1, 1], "ln_b": [0, 0, 0],
              "W1": [[0.1, -0.2, 0.3], [0.4, 0.1, -0.1], [-0.3, 0.2, 0.2], [0.2, 0.3, -0.4]],
              "b1": [0, 0.1, 0, -0.1], "W2": [[0.5, -0.4, 0.3, 0.2]], "b2": 0.1}


def test_mlp_three_sgd_steps_match_a_plain_torch_loop_with_the_shown_masks():
    args = [f"{k}={v}".replace(" ", "") for k, v in MLP_VALUES.items()]
    r = run_cli("eval", MLP, *args, "--const", "x,t", "--step", "sgd", "--lr", "0.1", "--steps", "3", "--json",
                "--no-numeric")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["agree"] is True
    assert doc["dropout"][0]["mask"] == doc["steps"][0]["dropout"][0]["mask"]
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k not in ("x", "t")) for k, v in MLP_VALUES.items()}
    names = ["ln_w", "ln_b", "W1", "b1", "W2", "b2"]
    opt = torch.optim.SGD([p[n] for n in names], lr=0.1)
    for s in doc["steps"]:
        mask = torch.tensor(s["dropout"][0]["mask"], dtype=torch.float64)
        assert set(mask.flatten().tolist()) <= {0.0, 2.0}
        opt.zero_grad()
        a = torch.relu(F.linear(F.layer_norm(p["x"], [3], p["ln_w"], p["ln_b"]), p["W1"], p["b1"]))
        loss = F.mse_loss(F.linear(a * mask, p["W2"], p["b2"]), p["t"])
        loss.backward()
        opt.step()
        assert s["loss"] == pytest.approx(loss.item(), rel=1e-12)
        for n in names:
            assert close(s["params"][n]["after"], p[n])
            assert s["params"][n]["symbolic"]["agree"] is True
    masks = [s["dropout"][0]["mask"] for s in doc["steps"]]
    assert masks[0] != masks[1] or masks[1] != masks[2]  # a fresh draw per step, as in a training loop


def test_mlp_sample_script_uses_this_program():
    script = (ROOT / "samples" / "mlp.sh").read_text()
    assert "--step sgd" in script and "--steps 3" in script
    for op in ("layer_norm", "linear", "relu", "dropout", "mse_loss"):
        assert op in script
