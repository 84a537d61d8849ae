"""The GReg training objective, as plain tensor functions.

Conventions (``docs/method.md``): the energy of a sample is
``E(x) = -T * logsumexp(f(x) / T)``; *low* energy means in-distribution (ID).
All functions take the logits of ONE concatenated forward whose first
``n_in`` rows are the ID batch and whose remaining rows are the auxiliary
outliers, because separate forwards would skew BatchNorm statistics.
"""
import torch
import torch.nn.functional as F

__all__ = [
    "energy",
    "energy_margin_loss",
    "detected_score",
    "input_gradient_penalty",
    "detected_weights",
    "finite_difference_penalty",
]


def energy(logits, temperature=1.0):
    """Free energy of each row of ``logits``: ``-T * logsumexp(logits / T)``.

    Lower energy means more in-distribution.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_samples, n_classes)
    temperature : float, default=1.0

    Returns
    -------
    torch.Tensor of shape (n_samples,)

    Examples
    --------
    >>> import torch
    >>> round(energy(torch.zeros(1, 4)).item(), 4)  # -log(4)
    -1.3863
    """
    return -temperature * torch.logsumexp(logits / temperature, dim=1)


def energy_margin_loss(energy_in, energy_aux, m_in, m_out):
    """Squared hinge that pushes ID energy below ``m_in`` and outlier energy above ``m_out``.

    ``mean(relu(E_in - m_in)^2) + mean(relu(m_out - E_aux)^2)`` (the paper's
    L_S, before the ``lambda_energy`` weight).

    Parameters
    ----------
    energy_in : torch.Tensor of shape (n_in,)
        Energies of the in-distribution rows.
    energy_aux : torch.Tensor of shape (n_aux,)
        Energies of the auxiliary outliers.
    m_in, m_out : float
        The energy margins of ID rows and of outliers.

    Returns
    -------
    torch.Tensor of shape ()
        The loss, differentiable through both energies.

    Examples
    --------
    >>> import torch
    >>> energy_margin_loss(torch.tensor([-30.0]), torch.tensor([-1.0]), -25.0, -7.0).item()
    0.0
    """
    return (F.relu(energy_in - m_in).pow(2).mean()
            + F.relu(m_out - energy_aux).pow(2).mean())


def detected_score(energy_in, energy_aux, m_in, m_out):
    """The scalar ``S`` whose input gradient GReg penalises.

    ``S = -mean(relu(m_in - E_in)) + mean(relu(E_aux - m_out))``. Only samples
    already correctly detected (ID energy below ``m_in``, outlier energy above
    ``m_out``) have a non-zero term, so only they get a gradient. The means
    give row ``r`` of ``dS/dx`` a factor ``1/n_in`` or ``1/n_aux``: this is the
    scaling of the paper's code, which makes ``lambda_grad=1.0`` mean the same
    as there.

    Parameters
    ----------
    energy_in : torch.Tensor of shape (n_in,)
        Energies of the in-distribution rows.
    energy_aux : torch.Tensor of shape (n_aux,)
        Energies of the auxiliary outliers.
    m_in, m_out : float
        The energy margins of ID rows and of outliers.

    Returns
    -------
    torch.Tensor of shape ()
        ``S``, differentiable through both energies.

    Examples
    --------
    >>> import torch
    >>> detected_score(torch.tensor([-27.0, -20.0]), torch.tensor([-5.0]), -25.0, -7.0).item()
    1.0
    """
    return -F.relu(m_in - energy_in).mean() + F.relu(energy_aux - m_out).mean()


def input_gradient_penalty(score, x):
    """Mean over rows of ``||d score / d x_r||_2``, differentiable w.r.t. the parameters.

    The input gradient is taken from the graph of the forward that produced
    ``score`` (``create_graph=True``), so the penalty costs one double backward
    and no second forward. ``x`` must be the tensor that was fed to the network
    with ``requires_grad=True``.

    Parameters
    ----------
    score : torch.Tensor of shape ()
        A scalar computed from ``x`` (:func:`detected_score`).
    x : torch.Tensor of shape (n_samples, ...)
        The network's input, with ``requires_grad=True``.

    Returns
    -------
    torch.Tensor of shape ()
        The penalty, differentiable w.r.t. the parameters (double backward).

    Examples
    --------
    >>> import torch
    >>> x = torch.ones(2, 3, requires_grad=True)
    >>> round(input_gradient_penalty((2 * x).sum(), x).item(), 4)  # 2 * sqrt(3)
    3.4641
    """
    (grad,) = torch.autograd.grad(score, x, create_graph=True)
    return grad.flatten(1).norm(dim=1).mean()


def detected_weights(energy_in, energy_aux, m_in, m_out):
    """Per-row ``|dS/dE_r|``: ``1/n_in`` for ID rows with energy below ``m_in``,
    ``1/n_aux`` for outlier rows above ``m_out``, 0 for the others (see
    :func:`detected_score`).

    Parameters
    ----------
    energy_in : torch.Tensor of shape (n_in,)
        Energies of the in-distribution rows.
    energy_aux : torch.Tensor of shape (n_aux,)
        Energies of the auxiliary outliers.
    m_in, m_out : float
        The energy margins of ID rows and of outliers.

    Returns
    -------
    torch.Tensor of shape (n_in + n_aux,)
        The weights of the ID rows, then of the outliers; no gradient.

    Examples
    --------
    >>> import torch
    >>> detected_weights(torch.tensor([-27.0, -20.0]), torch.tensor([-5.0]), -25.0, -7.0).tolist()
    [0.5, 0.0, 1.0]
    """
    weight_in = (energy_in < m_in).to(energy_in.dtype) / energy_in.shape[0]
    weight_aux = (energy_aux > m_out).to(energy_aux.dtype) / energy_aux.shape[0]
    return torch.cat([weight_in, weight_aux])


def finite_difference_penalty(energies, shifted_energies, weights, step):
    """Finite-difference estimate of :func:`input_gradient_penalty` without a double backward.

    ``shifted_energies`` are the energies at ``x + step * d`` with ``d_r`` the unit
    direction of row ``r`` of ``dS/dx``, so ``|E_r(x + step d_r) - E_r(x)| / step``
    estimates ``|grad E_r . d_r| = ||grad E_r||`` and, weighted by ``|dS/dE_r|``,
    the norm of row ``r`` of ``dS/dx``. Averaged over all rows, like the exact
    penalty. Both energies must carry the graph to the parameters.

    Parameters
    ----------
    energies : torch.Tensor of shape (n_samples,)
        Energies at ``x``.
    shifted_energies : torch.Tensor of shape (n_samples,)
        Energies at ``x + step * d``.
    weights : torch.Tensor of shape (n_samples,)
        ``|dS/dE_r|`` per row (:func:`detected_weights`).
    step : float
        The step ``h`` of the finite difference (``fd_step``).

    Returns
    -------
    torch.Tensor of shape ()
        The penalty, differentiable w.r.t. the parameters (single backward).

    Examples
    --------
    >>> import torch
    >>> finite_difference_penalty(torch.tensor([1.0, 2.0]), torch.tensor([1.1, 2.0]),
    ...                           torch.tensor([1.0, 1.0]), 0.1).item()  # doctest: +ELLIPSIS
    0.5...
    """
    return (weights * (shifted_energies - energies).abs()).mean() / step
