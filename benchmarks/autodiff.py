"""Hand-written MLP derivatives against torch.func and plain autograd, where the trainer uses them.

Two uses of `trpo.mlp_derivatives`, each timed the way one TRPO iteration runs it, with one
torch thread, as the median of --repeats rounds (the candidates interleaved within each round, so
a change of machine load hits all of them alike):

- Fisher-vector products (CG): build the product at theta_old on --batch observations, then
  --cg-iters + 1 products (CG's, and the x^T H x one). Candidates: `hand` (trpo.fisher.MLPFisher:
  J^T M J v with hand-written J v and J^T u), `torch.func jvp` (the same product with J v from
  torch.func.jvp and J^T u from one torch.func.vjp), `torch.func linearize` (J v from
  torch.func.linearize), `autograd` (natural.fisher_vector_product: double backward of the KL).
- value fit: one epoch of --batch samples in minibatches of --minibatch, one fused Adam step each
  (the trainer runs --vf-epochs of them). Candidates: `hand` (trpo.value_fit.fit_value),
  `torch.func` (torch.func.grad_and_value of the loss through functional_call), `autograd`
  (loss.backward()).

Both on a Gaussian policy and value net for obs dim 17 and 6 actions (HalfCheetah's), 64x64 tanh
(the default) and 256x256 ReLU. Then whole iterations of trpo.trainer.Trainer on --env's preset,
stepped round-robin with the hand path, torch.func for the Fisher product, for the value fit,
for both, and autograd for the value fit (patched into trpo.trainer; each trainer's first
iteration is not counted). Their CG and value-fit times are the records' time_cg_s (surrogate
gradient, CG and the x^T H x product) and time_value_s.

    python benchmarks/autodiff.py                       # about 4 minutes at load average 6
    python benchmarks/autodiff.py --repeats 3 --trainer-iterations 2   # smoke test, ~1 minute
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import common
import torch
from torch.func import functional_call

from trpo.fisher import MLPFisher

SIZES = {"64x64 tanh": ((64, 64), "tanh"), "256x256 relu": ((256, 256), "relu")}


# --- torch.func candidates ---------------------------------------------------------------------
class FuncFisher(MLPFisher):
    """MLPFisher with J v and J^T u from torch.func instead of trpo.mlp_derivatives."""

    linearize = False

    def _linearize(self, obs: torch.Tensor) -> torch.Tensor:
        net = self.policy.net
        self.params = {name: p.detach() for name, p in net.named_parameters()}

        def output(params: dict[str, torch.Tensor]) -> torch.Tensor:
            return functional_call(net, params, (obs,))

        self.output_of = output
        out, self.pullback = torch.func.vjp(output, self.params)
        if self.linearize:
            _, self.pushforward = torch.func.linearize(output, self.params)
        return out

    def _jvp(self, tangents: list[torch.Tensor]) -> torch.Tensor:
        v = {name: t.view_as(p) for (name, p), t in zip(self.params.items(), tangents, strict=True)}
        if self.linearize:
            return self.pushforward(v)
        return torch.func.jvp(self.output_of, (self.params,), (v,))[1]

    def _vjp(self, u: torch.Tensor) -> list[torch.Tensor]:
        (grads,) = self.pullback(u)
        return list(grads.values())


class LinearizedFisher(FuncFisher):
    linearize = True


def autograd_fisher(policy: Any, obs: torch.Tensor, damping: float) -> Callable:
    from trpo.natural import fisher_vector_product

    with torch.no_grad():
        old = tuple(t.clone() for t in policy.dist_params(obs))
    kl = policy.kl(old, policy.dist_params(obs)).mean()
    return fisher_vector_product(kl, list(policy.parameters()), damping)


def minibatch_fit(step_grads: Callable) -> Callable:
    """fit_value's loop with the gradients of each minibatch from step_grads(net, x, y)."""

    def fit(net, optimizer, obs, returns, epochs, minibatch, generator) -> float:
        n = obs.shape[0]
        size = min(minibatch, n)
        params = list(net.parameters())
        total, steps = torch.zeros(()), 0
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator)
            shuffled_obs, shuffled_returns = obs[order], returns[order]
            for start in range(0, n, size):
                x = shuffled_obs[start : start + size]
                y = shuffled_returns[start : start + size]
                loss, grads = step_grads(net, params, x, y)
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                optimizer.step()
                total += loss
                steps += 1
        return float(total / max(steps, 1))

    return fit


def _func_grads(net, params, x, y):
    names = [name for name, _ in net.named_parameters()]

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return (functional_call(net, p, (x,)).squeeze(-1) - y).pow(2).mean()

    detached = {name: p.detach() for name, p in zip(names, params, strict=True)}
    grads, value = torch.func.grad_and_value(loss)(detached)
    return value, [grads[n] for n in names]


def _autograd_grads(net, params, x, y):
    loss = (net(x).squeeze(-1) - y).pow(2).mean()
    return loss.detach(), torch.autograd.grad(loss, params)


func_fit_value = minibatch_fit(_func_grads)
autograd_fit_value = minibatch_fit(_autograd_grads)


# --- component timings -------------------------------------------------------------------------
def interleaved(cases: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Wall seconds of every case, `repeats` rounds, the cases in turn within a round; one
    untimed call of each first (lazy imports, allocator warm-up)."""
    for fn in cases.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def networks(hidden: tuple[int, ...], activation: str, batch: int) -> tuple[Any, Any, Any]:
    from gymnasium import spaces

    from trpo.envs import space_info
    from trpo.policies import ValueNetwork, make_policy

    gen = torch.Generator().manual_seed(0)
    space = space_info(spaces.Box(-1.0, 1.0, (17,)), spaces.Box(-1.0, 1.0, (6,)))
    policy = make_policy(space, hidden, activation, 0.0, gen)
    with torch.no_grad():  # off the near-zero output init, as after a few updates
        for p in policy.net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    value = ValueNetwork(17, hidden, activation, gen).net
    obs = torch.randn(batch, 17, generator=gen)
    return policy, value, obs


def time_fisher(policy: Any, obs: torch.Tensor, products: int, repeats: int) -> dict:
    n = sum(p.numel() for p in policy.parameters())
    vectors = [torch.randn(n, generator=torch.Generator().manual_seed(i)) for i in range(products)]
    makers: dict[str, Callable] = {
        "hand": MLPFisher,
        "torch.func jvp": FuncFisher,
        "torch.func linearize": LinearizedFisher,
        "autograd": autograd_fisher,
    }

    def iteration(make: Callable) -> Callable[[], None]:
        def run() -> None:
            fvp = make(policy, obs, 0.1)
            for v in vectors:
                fvp(v)

        return run

    reference = MLPFisher(policy, obs, 0.1)(vectors[0])
    for make in makers.values():  # the candidates compute the same product
        torch.testing.assert_close(
            make(policy, obs, 0.1)(vectors[0]), reference, rtol=1e-4, atol=1e-6
        )
    return interleaved({name: iteration(make) for name, make in makers.items()}, repeats)


def time_value_epoch(value: Any, obs: torch.Tensor, minibatch: int, repeats: int) -> dict:
    from trpo.value_fit import fit_value

    returns = obs[:, 0].sin() + 0.1 * obs[:, 1]
    fits = {"hand": fit_value, "torch.func": func_fit_value, "autograd": autograd_fit_value}

    def epoch(fit: Callable) -> Callable[[], None]:
        optimizer = torch.optim.Adam(value.parameters(), lr=1e-3, eps=1e-5, fused=True)
        generator = torch.Generator().manual_seed(1)
        return lambda: fit(value, optimizer, obs, returns, 1, minibatch, generator)

    return interleaved({name: epoch(fit) for name, fit in fits.items()}, repeats)


# --- whole trainer iterations ------------------------------------------------------------------
TRAINER_VARIANTS = {
    "hand (both)": (MLPFisher, None),
    "torch.func Fisher product": (FuncFisher, None),
    "torch.func value fit": (MLPFisher, func_fit_value),
    "torch.func both": (FuncFisher, func_fit_value),
    "autograd value fit": (MLPFisher, autograd_fit_value),
}


def time_trainer(env_id: str, iterations: int) -> dict[str, dict[str, list[float]]]:
    """Per variant: iteration, CG and value-fit seconds of iterations 2..iterations+1."""
    import trpo.trainer as trainer_module
    from trpo.presets import preset
    from trpo.value_fit import fit_value

    config = preset(env_id, total_steps=10_000_000, seed=0, torch_threads=1)
    trainers = {name: trainer_module.Trainer(config) for name in TRAINER_VARIANTS}
    times: dict[str, dict[str, list[float]]] = {
        name: {"iteration": [], "cg": [], "value": []} for name in TRAINER_VARIANTS
    }
    try:
        for i in range(iterations + 1):
            for name, (fisher, fit) in TRAINER_VARIANTS.items():
                trainer_module.MLPFisher = fisher
                trainer_module.fit_value = fit or fit_value
                record = trainers[name].step()
                if i > 0:
                    times[name]["iteration"].append(record.iteration_time_s)
                    times[name]["cg"].append(record.time_cg_s)
                    times[name]["value"].append(record.time_value_s)
            common.log(f"trainer iteration {i + 1}/{iterations + 1}")
    finally:
        trainer_module.MLPFisher, trainer_module.fit_value = MLPFisher, fit_value
        for t in trainers.values():
            t.close()
    return times


# --- report ------------------------------------------------------------------------------------
def ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def component_rows(samples: dict[str, list[float]], scale: int) -> list[list[Any]]:
    hand = ms(samples["hand"])
    return [
        [name, ms(s), ms(s) * scale, ms(s) / hand, min(s) * 1000] for name, s in samples.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--minibatch", type=int, default=128)
    parser.add_argument("--cg-iters", type=int, default=25, help="the MuJoCo presets' value")
    parser.add_argument("--vf-epochs", type=int, default=20, help="the MuJoCo presets' value")
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--trainer-iterations", type=int, default=12)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    common.limit_threads(1)
    common.warm_up_torch()
    common.quiet_mujoco_log()
    warnings.filterwarnings("ignore", module="torch")  # linearize's FX and jit.script notices

    results: dict[str, Any] = {"settings": vars(args), "fisher": {}, "value_epoch": {}}
    headers = ["candidate", "median ms", "per iteration ms", "x hand", "min ms"]
    for label, (hidden, activation) in SIZES.items():
        policy, value, obs = networks(hidden, activation, args.batch)
        common.log(f"{label}: Fisher-vector products")
        fisher = time_fisher(policy, obs, args.cg_iters + 1, args.repeats)
        common.log(f"{label}: value-fit epochs")
        epoch = time_value_epoch(value, obs, args.minibatch, args.repeats)
        results["fisher"][label] = fisher
        results["value_epoch"][label] = epoch
        products = args.cg_iters + 1
        print(f"\n### {label}: build + {products} Fisher-vector products, batch {args.batch}\n")
        print(common.markdown_table(headers, component_rows(fisher, 1), digits=[0, 1, 1, 2, 1]))
        print(
            f"\n### {label}: one value-fit epoch ({args.batch // args.minibatch} Adam steps); "
            f"per iteration = x {args.vf_epochs} epochs\n"
        )
        print(
            common.markdown_table(
                headers, component_rows(epoch, args.vf_epochs), digits=[0, 2, 1, 2, 2]
            )
        )

    if args.trainer_iterations > 0:
        common.log(f"{args.env}: whole trainer iterations")
        trainer = time_trainer(args.env, args.trainer_iterations)
        results["trainer"] = {"env": args.env, **trainer}
        base = {key: ms(trainer["hand (both)"][key]) for key in ("iteration", "cg", "value")}
        rows = [
            [name, *[v for key in base for v in (ms(t[key]), ms(t[key]) / base[key])]]
            for name, t in trainer.items()
        ]
        print(f"\n### {args.env} preset, whole iterations (median of {args.trainer_iterations})\n")
        print(
            common.markdown_table(
                ["variant", "iteration ms", "x hand", "CG ms", "x hand", "value fit ms", "x hand"],
                rows,
                digits=[0, 0, 2, 0, 2, 0, 2],
            )
        )
    path = common.write_results("autodiff", results, args.output)
    common.log(f"wrote {path}")


if __name__ == "__main__":
    main()
