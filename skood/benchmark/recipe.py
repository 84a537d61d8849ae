"""How the benchmark trains on a dataset beyond its default settings: augmentation,
optimizer and learning-rate schedule (:class:`TrainingRecipe`)."""
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from ..data import ArrayDataset
from ..transforms import Compose, RandomCrop, RandomHorizontalFlip

__all__ = ["TrainingRecipe", "PAPER_CIFAR_RECIPE"]


@dataclass(frozen=True)
class TrainingRecipe:
    """The training choices a dataset fixes, besides its :data:`DEFAULTS`.

    Each parameter is kept as the attribute of the same name. The default
    recipe is the one digits and Fashion-MNIST train with: no augmentation,
    SGD with momentum and weight decay ``5e-4``, a constant learning rate.

    Parameters
    ----------
    crop_padding : int or None, default=None
        None: the training images are used as they are, as arrays. An int:
        every epoch, each training image (and each auxiliary photograph) is
        flipped left to right with probability 1/2 and cropped back to its
        size at a random position after padding by ``crop_padding`` black
        pixels on each side (:class:`skood.transforms.RandomHorizontalFlip`,
        :class:`skood.transforms.RandomCrop`); the fit then reads the images
        through :class:`skood.data.ArrayDataset`, and the rows held out for
        validation and calibration are read without augmentation
        (``X_eval``).
    nesterov : bool, default=False
        Nesterov momentum in SGD.
    weight_decay : float, default=5e-4
        SGD's weight decay.
    lr_drop_at : float or None, default=None
        None: a constant learning rate. A fraction in (0, 1): the learning
        rate is multiplied by ``lr_drop_factor`` once, after
        ``round(lr_drop_at * epochs)`` epochs (skorch's ``LRScheduler`` with
        torch's ``MultiStepLR``); no drop when that is 0 or all the epochs.
        The benchmark applies it to training from scratch only: fine-tuning
        (``finetune=True``) keeps ``finetune_lr`` throughout.
    lr_drop_factor : float, default=0.1
        What the learning rate is multiplied by at the drop, in (0, 1).

    Examples
    --------
    >>> from skood.benchmark.recipe import PAPER_CIFAR_RECIPE
    >>> PAPER_CIFAR_RECIPE.drop_epoch(60), PAPER_CIFAR_RECIPE.drop_epoch(1)
    (50, None)
    """

    crop_padding: object = None
    nesterov: bool = False
    weight_decay: float = 5e-4
    lr_drop_at: object = None
    lr_drop_factor: float = 0.1

    def __post_init__(self):
        def number(value):
            return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))

        if self.crop_padding is not None and not (
                isinstance(self.crop_padding, numbers.Integral)
                and not isinstance(self.crop_padding, (bool, np.bool_)) and self.crop_padding >= 0):
            raise ValueError(f"crop_padding must be None (no augmentation) or an int >= 0, got "
                             f"{self.crop_padding!r}.")
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise ValueError(f"nesterov must be True or False, got {self.nesterov!r}.")
        if not number(self.weight_decay) or not 0 <= self.weight_decay < float("inf"):
            raise ValueError(f"weight_decay must be a finite number >= 0, got "
                             f"{self.weight_decay!r}.")
        if self.lr_drop_at is not None and not (number(self.lr_drop_at)
                                                and 0 < self.lr_drop_at < 1):
            raise ValueError(f"lr_drop_at must be None (a constant learning rate) or a fraction "
                             f"of the epochs in (0, 1), got {self.lr_drop_at!r}.")
        if not number(self.lr_drop_factor) or not 0 < self.lr_drop_factor < 1:
            raise ValueError(f"lr_drop_factor must be a number in (0, 1), got "
                             f"{self.lr_drop_factor!r}.")

    @property
    def augments(self):
        """Whether the training images are augmented (read through a Dataset)."""
        return self.crop_padding is not None

    def drop_epoch(self, epochs):
        """The epoch count after which the learning rate drops.

        Parameters
        ----------
        epochs : int
            The training epochs.

        Returns
        -------
        int or None
            ``round(lr_drop_at * epochs)``, or None for no drop (no
            ``lr_drop_at``, or a drop at 0 or after the last epoch).
        """
        if self.lr_drop_at is None:
            return None
        epoch = round(self.lr_drop_at * epochs)
        return epoch if 0 < epoch < epochs else None

    def estimator_params(self, epochs):
        """The estimator parameters this recipe sets: the optimizer's and the schedule.

        Parameters
        ----------
        epochs : int
            The training epochs (the schedule's drop depends on them).

        Returns
        -------
        params : dict
            ``optimizer__weight_decay``, ``optimizer__nesterov`` when it is on,
            and ``schedule``: a list with skorch's ``LRScheduler`` when the
            learning rate drops, else empty (to add to the estimator's
            ``callbacks``).
        """
        params = dict(optimizer__weight_decay=self.weight_decay)
        if self.nesterov:
            params["optimizer__nesterov"] = True
        schedule = []
        drop = self.drop_epoch(epochs)
        if drop is not None:
            from skorch.callbacks import LRScheduler
            schedule.append(LRScheduler(policy=torch.optim.lr_scheduler.MultiStepLR,
                                        milestones=[drop], gamma=self.lr_drop_factor))
        params["schedule"] = schedule
        return params

    def augmentation(self, image_shape, seed, fill=0.0):
        """The training transform: a random horizontal flip, then a padded random crop.

        Parameters
        ----------
        image_shape : (int, int)
            ``(height, width)``: the crop's size, the images' own.
        seed : int
            Seeds the one ``torch.Generator`` both draw from (no DataLoader
            workers in the benchmark, so the draws repeat for a seed).
        fill : float or tuple of float, default=0.0
            The padding's value, one per channel or one for all (black: 0 for
            images in ``[0, 1]``, ``-mean / std`` for standardised ones).

        Returns
        -------
        skood.transforms.Compose
        """
        generator = torch.Generator().manual_seed(int(seed))
        return Compose([RandomHorizontalFlip(generator=generator),
                        RandomCrop(tuple(image_shape), padding=self.crop_padding, fill=fill,
                                   generator=generator)])

    def fit_inputs(self, X_train, y_train, X_aux, image_shape, seed, fill=0.0):
        """What ``fit`` gets, as keyword arguments.

        Parameters
        ----------
        X_train : ndarray of shape (n_samples, channels, height, width)
        y_train : ndarray of shape (n_samples,)
        X_aux : ndarray or None
            The auxiliary outliers (None: the fit has none, or makes them).
        image_shape : (int, int)
        seed : int
            Seeds the augmentation: ``seed`` for the ID rows, ``seed + 1`` for
            the outliers.
        fill : float or tuple of float, default=0.0
            The crops' padding value (see :meth:`augmentation`).

        Returns
        -------
        dict
            Without augmentation ``X``, ``y`` and ``X_aux``, the arrays as they
            are. With it, ``X`` an :class:`skood.data.ArrayDataset` of the ID
            rows and labels augmented as they are read, ``y`` None, ``X_aux``
            the outliers likewise (or None), and ``X_eval`` the same ID rows
            without augmentation.
        """
        if not self.augments:
            return dict(X=X_train, y=y_train, X_aux=X_aux)
        inputs = dict(X=ArrayDataset(X_train, y_train,
                                     transform=self.augmentation(image_shape, seed, fill)),
                      y=None, X_eval=ArrayDataset(X_train, y_train))
        inputs["X_aux"] = None if X_aux is None else ArrayDataset(
            X_aux, transform=self.augmentation(image_shape, seed + 1, fill))
        return inputs


#: The CIFAR recipe of the GReg paper's public code (ResNet-18 from scratch):
#: random crop with 4 pixels of padding and horizontal flip, SGD with Nesterov
#: momentum 0.9 and weight decay 1e-4, learning rate 0.1 for 60 epochs, times
#: 0.1 after epoch 50 (the epochs, learning rate, batch size and margins are the
#: dataset's :data:`DEFAULTS`).
PAPER_CIFAR_RECIPE = TrainingRecipe(crop_padding=4, nesterov=True, weight_decay=1e-4,
                                    lr_drop_at=50 / 60)
