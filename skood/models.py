"""Small reference networks for tabular data and small images.

Any ``torch.nn.Module`` that returns logits works with
:class:`skood.GradRegOODClassifier`; these are here for examples, tests and
benchmarks.
"""
import torch
from torch import nn

__all__ = ["MLP", "SmallCNN"]


class MLP(nn.Module):
    """Multi-layer perceptron on flattened inputs; returns logits.

    Parameters
    ----------
    n_features : int
        Number of input values per sample (inputs are flattened).
    n_classes : int
    hidden : tuple of int, default=(128, 128)
    dropout : float, default=0.0

    Examples
    --------
    >>> import torch
    >>> MLP(64, 10)(torch.zeros(2, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, n_features, n_classes, hidden=(128, 128), dropout=0.0):
        super().__init__()
        layers, width = [nn.Flatten()], n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class SmallCNN(nn.Module):
    """Two convolution blocks with BatchNorm, global average pooling and a linear head.

    Parameters
    ----------
    in_channels : int, default=1
    n_classes : int, default=10
    width : int, default=32

    Examples
    --------
    >>> import torch
    >>> SmallCNN(1, 10, width=8)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels=1, n_classes=10, width=32):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(in_channels, width), block(width, 2 * width),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(2 * width, n_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
