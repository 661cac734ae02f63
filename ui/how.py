"""How it works: the three formulas of a VAE, each beside the cvae code that computes it."""

from __future__ import annotations

import inspect

import streamlit as st

from cvae.core import model as cvae_model


HOW_KEY = "how_open"


# A fragment: opening or closing the section reruns only this function.
@st.fragment
def how_it_works_ui() -> None:
    """Collapsed, the section is only its label: its formulas (KaTeX) and code (syntax
    highlighting) cost the browser ~0.3 s of CPU to draw, so they are sent when it is opened."""
    with st.expander("How it works", key=HOW_KEY, on_change="rerun") as section:
        if not section.open:
            return
        st.markdown("The **encoder** maps a digit x to a Gaussian q(z|x) = N(mu, sigma^2) over the 2-D latent "
                    "space; the **decoder** maps a latent point z back to 784 pixel probabilities. Training "
                    "samples z with the *reparameterisation trick*, so gradients flow through mu and sigma:")
        steps = [
            (r"z = \mu + \sigma \odot \varepsilon,\quad \sigma = e^{\frac{1}{2}\log\sigma^2},"
             r"\quad \varepsilon \sim \mathcal{N}(0, I)", cvae_model.reparameterize,
             "The loss is the negative evidence lower bound (-ELBO) per image: a reconstruction term "
             "(784 x the mean binary cross-entropy over pixels) plus the KL divergence of q(z|x) "
             "from the prior N(0, I):"),
            (r"-\mathrm{ELBO}(x) = \underbrace{784\cdot\overline{\mathrm{BCE}}(x, \hat x)}_{\text{reconstruction}}"
             r" + \underbrace{D_{\mathrm{KL}}\big(q(z\mid x)\,\|\,\mathcal{N}(0, I)\big)}_{\text{KL}}",
             cvae_model.vae_loss, "For a diagonal Gaussian the KL term has a closed form:"),
            (r"D_{\mathrm{KL}} = -\tfrac{1}{2}\sum_{j=1}^{d}\left(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\right)",
             cvae_model.kl_divergence, None),
        ]
        # Each formula beside the package code that computes it (read from cvae, never copied here).
        for formula, fn, then in steps:
            c1, c2 = st.columns(2)
            c1.latex(formula)
            c2.code(inspect.getsource(fn), language="python")
            if then:
                st.markdown(then)
