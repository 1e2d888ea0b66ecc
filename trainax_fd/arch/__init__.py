"""Stepper architectures whose ghost points come from the stencil core's boundary conditions.

Every architecture acts on one sample `(channels, *spatial)` in 1D, 2D or 3D (batch with
`jax.vmap`) and reports `num_parameters` and `receptive_field`.
"""

from ._base import AbstractArchitecture as AbstractArchitecture
from ._convnet import ConvNet as ConvNet
from ._corrected import Corrected as Corrected
from ._dilated_resnet import DilatedResNet as DilatedResNet
from ._fno import FNO as FNO
from ._mlp import MLP as MLP
from ._resnet import ResNet as ResNet
from ._sip_unet import SIPUNet as SIPUNet
from ._stencil_conv import (
    StencilConv as StencilConv,
    finite_difference_net as finite_difference_net,
)
from ._unet import UNet as UNet
from ._upwind import UpwindNet as UpwindNet
