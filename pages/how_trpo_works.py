"""How TRPO works: the algorithm and its derivation on one page, each quantity annotated with its
value in a chosen run's latest iteration (symbols only when there is no run)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from pages.common import (
    metrics,
    pick_run,
    safe_config,
)
from trpo.analysis import lagrange_multiplier
from trpo.config import TRPOConfig, knob_schema
from trpo.formatting import finite, fmt, tex
from trpo.metrics_log import record_at

SCHEMA = knob_schema()  # labels and units of the knobs, written once in the library


BOX_COLUMNS = 5  # every box uses the same column grid, so values line up down the page


def values_box(title: str, items: list[tuple[str, str, str | None]]) -> None:
    """A bordered row of metrics: (label, value, help)."""
    with st.container(border=True):
        st.caption(title)
        columns = st.columns(max(BOX_COLUMNS, len(items)))
        for column, (label, value, help_text) in zip(columns, items, strict=False):
            column.metric(label, value, help=help_text)


# --- the run whose numbers annotate the page ----------------------------------------------

st.title("How TRPO works")
st.markdown(
    "Trust Region Policy Optimization improves a stochastic policy $\\pi_\\theta$ by the "
    "largest step that a local model predicts to be good **and** that keeps the new policy "
    "close to the old one, measured by the mean KL divergence. Below, the derivation; the "
    "boxes show each quantity in the latest iteration of the run you choose."
)
run = pick_run("how_run", label="Annotate with the latest iteration of")
config: TRPOConfig | None = safe_config(run) if run is not None else None
frame = metrics(run) if run is not None and config is not None else pd.DataFrame()
record = record_at(frame, int(frame["iteration"].iloc[-1])) if len(frame) else None
if run is not None and config is not None and record is None:
    st.info("This run has no iteration yet: the page shows symbols only.")
elif run is not None and config is None:
    st.info("This run's config cannot be used (see above): the page shows symbols only.")
where = f"Run {run.id}, iteration {record.iteration}" if record is not None else ""
st.page_link(
    "trust_region.py",
    label="Trust region page: every iteration's CG, step and line search",
    icon=":material/target:",
)
st.page_link(
    "train.py",
    label="Train page: start a run and watch these numbers live",
    icon=":material/play_circle:",
)

# --- 1. the problem -------------------------------------------------------------------------

st.header("1. The constrained problem")
st.markdown(
    "With the data collected by $\\pi_{\\theta_{old}}$, TRPO maximises the importance-weighted "
    "**surrogate** $L$ subject to a bound $\\delta$ on the mean KL divergence between the old "
    "and the new policy over the visited states:"
)
st.latex(
    r"\max_\theta\; L(\theta) = \mathbb{E}_{s,a \sim \pi_{\theta_{old}}}\!\left["
    r"\frac{\pi_\theta(a \mid s)}{\pi_{\theta_{old}}(a \mid s)}\, A(s,a)\right]"
)
st.latex(
    r"\text{subject to}\quad"
    r"\bar D_{KL}(\theta) = \mathbb{E}_{s}\!\left[D_{KL}\big(\pi_{\theta_{old}}(\cdot \mid s)"
    r"\,\|\,\pi_\theta(\cdot \mid s)\big)\right] \le \delta"
)
st.markdown(
    "$A$ is the advantage estimated by GAE (section 6). At $\\theta = \\theta_{old}$ the ratio "
    "is 1, so $L(\\theta_{old})$ is the mean advantage (0 when advantages are standardised)."
)
if record is not None and config is not None:
    values_box(
        where,
        [
            ("δ", f"{config.delta:g}", f"{SCHEMA['delta'].label} ({SCHEMA['delta'].unit})"),
            ("L(θ_old)", fmt(record.surrogate_before), "surrogate_before"),
            ("L(θ_new)", fmt(record.surrogate_after), "surrogate_after"),
        ],
    )

# --- 2. local models -------------------------------------------------------------------------

st.header("2. Linear surrogate, quadratic KL")
st.markdown(
    "Near $\\theta_{old}$ the surrogate is replaced by its first-order model and the KL by its "
    "second-order model. The KL has value 0 and gradient 0 at $\\theta_{old}$ (it is minimal "
    "there), so its first non-zero term is quadratic, with $H$ the Hessian of the mean KL: the "
    "Fisher information matrix of the policy."
)
st.latex(
    r"L(\theta) \approx L(\theta_{old}) + g^\top(\theta - \theta_{old}),"
    r"\qquad g = \nabla_\theta L(\theta)\big|_{\theta_{old}}"
)
st.latex(
    r"\bar D_{KL}(\theta) \approx \tfrac12\,(\theta - \theta_{old})^\top H\,"
    r"(\theta - \theta_{old}),\qquad H = \nabla^2_\theta \bar D_{KL}(\theta)\big|_{\theta_{old}}"
)
if record is not None:
    values_box(
        where,
        [
            ("|g|", fmt(record.grad_norm), "grad_norm: the norm of the policy gradient."),
        ],
    )

# --- 3. the Lagrangian solution ----------------------------------------------------------------

st.header("3. The step: a Lagrangian solution")
st.markdown(
    "With $d = \\theta - \\theta_{old}$, maximise $g^\\top d$ subject to "
    "$\\tfrac12 d^\\top H d \\le \\delta$. Setting the gradient of the Lagrangian to zero:"
)
st.latex(
    r"\mathcal{L}(d, \lambda) = g^\top d - \lambda\left(\tfrac12 d^\top H d - \delta\right)"
    r"\;\Rightarrow\; g - \lambda H d = 0 \;\Rightarrow\; d = \frac{1}{\lambda} H^{-1} g"
    r" = \frac{x}{\lambda},\qquad x = H^{-1} g"
)
st.markdown("The constraint is active at the optimum, $\\tfrac12 d^\\top H d = \\delta$, so")
st.latex(
    r"\lambda = \sqrt{\frac{x^\top H x}{2\delta}} = \sqrt{\frac{g^\top H^{-1} g}{2\delta}}"
    r" = \sqrt{\frac{g^\top x}{2\delta}},"
    r"\qquad d^\ast = \sqrt{\frac{2\delta}{x^\top H x}}\; x = s\,x"
)
st.markdown(
    "The full step $s\\,x$ reaches the KL limit exactly under the quadratic model, and the "
    "linear model predicts the improvement $g^\\top(s\\,x) = s\\,g^\\top x$. With the exact "
    "$x$, $x^\\top H x = g^\\top x$ and $s = 1/\\lambda$. Every CG iterate $x_k$ keeps this "
    "equality (section 4), so the two differ only by rounding."
)
if record is not None and config is not None:
    g_dot_x, x_h_x = record.g_dot_x, record.x_h_x
    lam = lagrange_multiplier(g_dot_x, config.delta)
    scale = record.step_scale
    values_box(
        where,
        [
            ("gᵀx", fmt(g_dot_x), "g_dot_x = gᵀH⁻¹g with x from conjugate gradient."),
            ("xᵀHx", fmt(x_h_x), "x_h_x, with H damped as solved."),
            ("multiplier λ", fmt(lam), "λ = sqrt(gᵀx / (2δ)), computed from g_dot_x and δ."),
            ("step scale s", fmt(scale), "step_scale = sqrt(2δ / xᵀHx), as recorded."),
            (
                "1/λ",
                fmt(1 / lam if finite(lam) and lam > 0 else math.nan),
                "Equals s up to rounding: gᵀx = xᵀHx for every CG iterate.",
            ),
        ],
    )
    if finite(lam):
        st.latex(
            rf"\lambda = \sqrt{{\frac{{{tex(g_dot_x)}}}{{2 \cdot {tex(config.delta)}}}}}"
            rf" = {tex(lam)},\qquad s = \sqrt{{\frac{{2 \cdot {tex(config.delta)}}}"
            rf"{{{tex(x_h_x)}}}}} = {tex(scale)}"
        )

# --- 4. conjugate gradient ---------------------------------------------------------------------

st.header("4. Conjugate gradient: x = H⁻¹g without forming H")
st.markdown(
    "$H$ has as many rows as the policy has parameters, so it is never built. Conjugate "
    "gradient solves $(H + c\\,I)\\,x = g$ (damping $c$ keeps it well conditioned) using only "
    "**Fisher-vector products** $Hv$, each a second derivative of the mean KL:"
)
st.latex(
    r"H v = \nabla_\theta\!\left( \big(\nabla_\theta \bar D_{KL}(\theta)\big)^{\!\top} v"
    r"\right)\Big|_{\theta_{old}}"
)
st.latex(
    r"\begin{aligned}"
    r"&x_0 = 0,\quad r_0 = g,\quad p_0 = g\\"
    r"&\text{for } k = 0, 1, \dots, \text{cg\_iters}-1:\\"
    r"&\qquad \eta_k = \frac{r_k^\top r_k}{p_k^\top (H + cI)\, p_k},\quad "
    r"x_{k+1} = x_k + \eta_k p_k,\quad r_{k+1} = r_k - \eta_k (H + cI)\, p_k\\"
    r"&\qquad \text{stop if } \lVert r_{k+1}\rVert \le \text{tol},\quad "
    r"\beta_k = \frac{r_{k+1}^\top r_{k+1}}{r_k^\top r_k},\quad "
    r"p_{k+1} = r_{k+1} + \beta_k p_k"
    r"\end{aligned}"
)
st.markdown(
    "Each iteration costs one product $Hv$; the residual $r_k = g - (H + cI)x_k$ shrinks as "
    "$x_k$ approaches $H^{-1}g$. The update $r_{k+1} = r_k - \\eta_k (H + cI) p_k$ equals it "
    "only in exact arithmetic: in float32 the recurrence keeps shrinking after the true "
    "residual has stopped at round-off, so the trainer also records the true "
    "$\\lVert g - (H + cI)x\\rVert$ of the $x$ it uses (from the product $x^\\top H x$ needs)."
)
if record is not None and config is not None:
    residuals = record.cg_residuals
    values_box(
        where,
        [
            (
                "CG iterations",
                f"{len(residuals)} of {config.cg_iters}",
                "len(cg_residuals) of cg_iters",
            ),
            (
                "final |r_k|",
                fmt(residuals[-1], ".2e") if residuals else "n/a",
                "CG's recurrence residual: the last entry of cg_residuals",
            ),
            (
                "true residual",
                fmt(record.cg_true_residual, ".2e"),
                "|g − (H + cI)x| of the x used: cg_true_residual",
            ),
            ("damping c", f"{config.cg_damping:g}", f"{SCHEMA['cg_damping'].label}: cg_damping"),
        ],
    )

st.subheader("What CG learns about H")
st.markdown(
    "CG's numbers $\\eta_j$ and $\\beta_j$ hold more than $x$. In the orthonormal basis of "
    "the directions CG explored, $(-1)^j\\, r_j / \\lVert r_j \\rVert$, which span the "
    "Krylov space $\\{g, (H + cI)\\,g, \\dots, (H + cI)^{k-1} g\\}$, the matrix $H + cI$ is the "
    "tridiagonal **Lanczos matrix** $T_k$, and its entries are CG's (Saad, *Iterative Methods "
    "for Sparse Linear Systems*, sec. 6.7.3):"
)
st.latex(
    r"(T_k)_{00} = \frac{1}{\eta_0},\qquad (T_k)_{jj} = \frac{1}{\eta_j}"
    r" + \frac{\beta_{j-1}}{\eta_{j-1}},\qquad (T_k)_{j,j+1} = (T_k)_{j+1,j}"
    r" = \frac{\sqrt{\beta_j}}{\eta_j}"
)
st.markdown(
    "Its eigenvalues $\\theta_1 \\le \\dots \\le \\theta_k$ (Ritz values) cost no "
    "product, only a $k \\times k$ eigenproblem, and they lie inside the spectrum of "
    "$H + cI$, closing in on its ends from inside as $k$ grows:"
)
st.latex(
    r"c \;\le\; \lambda_{min}(H + cI) \;\le\; \theta_1 \;\le\; \theta_k"
    r" \;\le\; \lambda_{max}(H + cI),\qquad"
    r" \frac{\theta_k}{\theta_1} \;\le\; \kappa"
    r" = \frac{\lambda_{max}(H) + c}{\lambda_{min}(H) + c} \;\le\; 1 + \frac{\lambda_{max}(H)}{c}"
)
st.markdown(
    "So $\\theta_k$ (`fisher_eig_max`) is a lower bound on the largest curvature of the KL, "
    "$\\theta_1$ (`fisher_eig_min`) an upper bound on the smallest, and their ratio "
    "(`fisher_condition`) understates the condition number $\\kappa$, by far after a few "
    "iterations. They describe $H$ in the directions that $g$ reaches, the only ones $x$ can "
    "contain. The Trust region page draws them over a run.\n\n"
    "**Why a few iterations suffice.** After $k$ iterations CG's error, in the norm of "
    "$H + cI$, is at most $2\\,\\big((\\sqrt{\\kappa} - 1) / (\\sqrt{\\kappa} + 1)\\big)^k$ "
    "times the first, and it falls much faster when the spectrum is a few large eigenvalues "
    "over a tight cluster: each outlier costs about one iteration, the cluster a few. The "
    "Fisher matrix of a neural network has that shape, a few large eigenvalues and most near "
    "zero (Karakida, Akaho and Amari 2019), and damping "
    "turns the near-zero ones into a cluster at $c$. Besides, every iterate is a safe step: "
    "$g^\\top x_k = x_k^\\top (H + cI)\\, x_k > 0$ (the residual $r_k$ is orthogonal to the "
    "Krylov space that holds $x_k$), so $x_k$ is an ascent direction, $s$ scales it to the KL "
    "limit and the line search checks the true KL. A rough $x$ gives a less natural step, not "
    "an unsafe one.\n\n"
    "**What damping does.** Without it, $\\lambda_{min}(H)$ is 0 or nearly: $H$, an average "
    "over the batch, has rank at most the batch size times the policy's outputs, often fewer "
    "than its parameters, and many directions barely change the policy. Damping puts a floor "
    "$c$ under every eigenvalue, so $\\kappa \\le 1 + \\lambda_{max}(H)/c$ and CG converges "
    "faster. The price: where $g$ has the component $g_\\lambda$ along an eigenvector of $H$ "
    "with eigenvalue $\\lambda$, $x$ has $g_\\lambda / (\\lambda + c)$ instead of "
    "$g_\\lambda / \\lambda$; for $\\lambda$ well below $c$ that is about $g_\\lambda / c$, "
    "the plain gradient's $g/c$. As $c$ grows, $x$ turns towards $g$.\n\n"
    "**cos(g, x)** $= g^\\top x / (\\lVert g \\rVert \\lVert x \\rVert)$ tells how far "
    "the natural gradient turns the plain one: 1 when $H + cI$ acts on $g$ like a multiple of "
    "the identity, small when $x$ goes mostly along directions of low curvature, which "
    "$(H + cI)^{-1}$ stretches by up to $1/c$."
)
if record is not None:
    values_box(
        where,
        [
            ("θ_max", fmt(record.fisher_eig_max), "fisher_eig_max: at most λ_max(H + cI)"),
            ("θ_min", fmt(record.fisher_eig_min), "fisher_eig_min: at least λ_min(H + cI) ≥ c"),
            (
                "θ_max / θ_min",
                fmt(record.fisher_condition, ".3g"),
                "fisher_condition: at most the condition number of H + cI",
            ),
            ("cos(g, x)", fmt(record.cos_g_x, ".3f"), "cos_g_x: 1 = x along g"),
        ],
    )

# --- 5. line search ----------------------------------------------------------------------------

st.header("5. Backtracking line search")
st.markdown(
    "The models are only local, so the step is checked on the real objective. Candidates "
    "shrink geometrically; the first that satisfies both checks is taken:"
)
st.latex(r"\theta_j = \theta_{old} + \alpha^j\, s\, x,\qquad j = 0, 1, \dots, K")
st.latex(
    r"\text{accept the first } j \text{ with}\quad \bar D_{KL}(\theta_j) \le \delta"
    r"\quad\text{and}\quad L(\theta_j) > L(\theta_{old});"
    r"\qquad\text{if none passes, keep } \theta = \theta_{old}"
)
if record is not None and config is not None:
    j = record.backtrack_index if record.step_accepted else None
    kl = record.kl
    values_box(
        where,
        [
            (
                "accepted j",
                "rejected" if j is None else str(j),
                str(record.reject_reason or "") if j is None else None,
            ),
            (
                "αʲ",
                "n/a" if j is None else fmt(config.alpha**j),
                f"α = {config.alpha:g}, K = {config.max_backtracks}",
            ),
            ("KL of the step", fmt(kl), "kl: mean KL(π_old ‖ π_new)"),
            ("δ", f"{config.delta:g}", None),
            ("KL / δ", fmt(kl / config.delta if finite(kl) else math.nan, ".1%"), None),
        ],
    )

# --- 6. GAE ------------------------------------------------------------------------------------

st.header("6. Advantages: GAE")
st.markdown(
    "The advantages come from the value network $V$ by generalised advantage estimation. The "
    "sum stops at every episode end (at $T$). A termination does not bootstrap; a time-limit "
    "truncation bootstraps from $V(s_{final})$, the real last observation (not the reset "
    "one), and so does the end of the batch, from the state the env is in:"
)
st.latex(
    r"\delta_t = r_t + \gamma\, V(s_{t+1})\,(1 - \text{terminated}_t) - V(s_t),\qquad "
    r"A_t = \sum_{l \ge 0} (\gamma \lambda_{GAE})^l\, \delta_{t+l}"
)
st.latex(
    r"\lambda_{GAE} = 1:\quad A_t = G_t - V(s_t),\qquad "
    r"G_t = \sum_{l=0}^{T-t-1} \gamma^l r_{t+l} + \gamma^{T-t}\, V(s_T)\,"
    r"[\text{$T$ is not a termination}]"
)
st.markdown(
    "($\\lambda_{GAE}$ is unrelated to the multiplier $\\lambda$ of section 3.) Advantages "
    "are then standardised within the batch when `normalize_advantages` is on."
)
if record is not None and config is not None:
    values_box(
        where,
        [
            ("γ", f"{config.gamma:g}", "gamma"),
            ("λ_GAE", f"{config.gae_lambda:g}", "gae_lambda"),
            ("standardised", "yes" if config.normalize_advantages else "no", None),
            ("mean return", fmt(record.return_mean, ".1f"), "episodes ended in this batch"),
        ],
    )

# --- 7. value regression -------------------------------------------------------------------------

st.header("7. The value regression")
st.markdown(
    "After the policy step, $V_\\phi$ is fitted to the λ-returns $\\hat R_t = A_t + "
    "V_{\\phi_{old}}(s_t)$ by minibatch Adam for a few epochs:"
)
st.latex(r"\min_\phi\; \frac{1}{N}\sum_{t} \big(V_\phi(s_t) - \hat R_t\big)^2")
if record is not None and config is not None:
    values_box(
        where,
        [
            ("value loss", fmt(record.value_loss), "value_loss: the mean minibatch loss"),
            (
                "explained variance",
                fmt(record.explained_variance, ".3f"),
                "1 − Var(R̂ − V) / Var(R̂) before the fit; 1 is perfect.",
            ),
            ("epochs × lr", f"{config.vf_epochs} × {config.vf_lr:g}", None),
        ],
    )

# --- one iteration -----------------------------------------------------------------------------

st.header("One iteration, in order")
st.markdown(
    "1. Collect `steps_per_iteration` transitions with $\\pi_{\\theta_{old}}$.\n"
    "2. Compute $V(s_t)$, then advantages $A_t$ (GAE) and returns $\\hat R_t$.\n"
    "3. Compute $g$, then $x \\approx H^{-1}g$ by conjugate gradient on Fisher-vector products.\n"
    "4. Scale: $s = \\sqrt{2\\delta / x^\\top H x}$.\n"
    "5. Backtrack over $\\alpha^j s x$ until KL $\\le \\delta$ and $L$ improves (or keep "
    "$\\theta$).\n"
    "6. Fit $V_\\phi$ to $\\hat R_t$."
)
if run is None:
    st.caption("Start a run to see these quantities with numbers.")
