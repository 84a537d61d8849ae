"""GReg's loss as the paper's public code computes it, restated in plain torch.

Not used for training: it is the reference that the tests check skood's step
against (same loss and gradients) and that ``benchmarks/step_cost.py`` times
skood's step against. The penalty comes from a second forward inside
``torch.autograd.functional.jacobian``, then the mean row norm of the jacobian.
"""
import torch
import torch.nn.functional as F

__all__ = ["paper_greg_loss"]


def _energy(logits):
    return -torch.logsumexp(logits, 1)


def paper_greg_loss(module, x_in, y_in, x_aux, *, lambda_energy, lambda_grad, m_in, m_out):
    """Cross-entropy + weighted energy margin loss + weighted gradient penalty.

    Parameters
    ----------
    module : torch.nn.Module
        Returns logits; used in its current train/eval mode.
    x_in, y_in : torch.Tensor
        The ID batch and its class indices.
    x_aux : torch.Tensor
        The outlier batch.
    lambda_energy, lambda_grad, m_in, m_out : float

    Returns
    -------
    torch.Tensor, 0-dim, with the graph to the module's parameters.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> loss = paper_greg_loss(torch.nn.Linear(4, 3), torch.randn(4, 4), torch.tensor([0, 1, 2, 0]),
    ...                        torch.randn(4, 4), lambda_energy=0.1, lambda_grad=1.0,
    ...                        m_in=-6.0, m_out=-3.0)
    >>> loss.shape
    torch.Size([])
    """
    n = x_in.shape[0]
    data = torch.cat([x_in, x_aux])
    logits = module(data)
    e = _energy(logits)
    loss = (F.cross_entropy(logits[:n], y_in)
            + lambda_energy * (F.relu(e[:n] - m_in).pow(2).mean()
                               + F.relu(m_out - e[n:]).pow(2).mean()))

    def masked_score(inputs):
        e_inner = _energy(module(inputs))
        return -F.relu(m_in - e_inner[:n]).mean() + F.relu(e_inner[n:] - m_out).mean()

    jac = torch.autograd.functional.jacobian(masked_score, data, create_graph=True)
    return loss + lambda_grad * torch.linalg.norm(jac.reshape(jac.shape[0], -1), 2, 1).mean()
