"""Small reference networks for tabular data and small images.

Any ``torch.nn.Module`` that returns logits works with
:class:`skood.GradRegOODClassifier`; these are here for examples, tests and
benchmarks.
"""
import torch
from torch import nn

__all__ = ["MLP", "SmallCNN", "ResNet18"]


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
        """Logits of a batch.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, ...)
            Flattened to ``n_features`` values per sample.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_classes)
        """
        return self.classifier(self.features(x))


class SmallCNN(nn.Module):
    """Two convolution blocks with BatchNorm, a 128-unit hidden layer and a linear head.

    The feature maps are pooled to 4x4 before the hidden layer, so any input
    size of at least 4x4 works. The hidden layer's output (the input of the
    last ``nn.Linear``) are the features GReg+'s sampler clusters.

    Parameters
    ----------
    in_channels : int, default=1
    n_classes : int, default=10
    width : int, default=32
        Channels of the first block (the second has twice as many).

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

        self.features = nn.Sequential(
            block(in_channels, width), block(width, 2 * width), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(2 * width * 16, 128), nn.ReLU())
        self.classifier = nn.Linear(128, n_classes)

    def forward(self, x):
        """Logits of a batch.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, in_channels, height, width)

        Returns
        -------
        torch.Tensor of shape (n_samples, n_classes)
        """
        return self.classifier(self.features(x))


class _BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 (3x3 stem, no max-pool), as in the paper's experiments.

    Parameters
    ----------
    in_channels : int, default=3
    n_classes : int, default=10
    width : int, default=64
        Channels of the first stage (64 is the standard network).

    Examples
    --------
    >>> import torch
    >>> ResNet18(3, 10, width=8)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels=3, n_classes=10, width=64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        layers, channels = [], width
        for stage, multiple in enumerate((1, 2, 4, 8)):
            stride = 1 if stage == 0 else 2
            layers += [_BasicBlock(channels, width * multiple, stride),
                       _BasicBlock(width * multiple, width * multiple, 1)]
            channels = width * multiple
        self.layers = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x):
        """Logits of a batch.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, in_channels, height, width)

        Returns
        -------
        torch.Tensor of shape (n_samples, n_classes)
        """
        return self.classifier(self.pool(self.layers(self.stem(x))))
