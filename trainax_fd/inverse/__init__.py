"""Physics inversion: the damped inverse of periodic heat diffusion, the scale-invariant physics
(SIP) proxy loss and plain gradient descent through the physics as objectives, and the random
heat sources of the SIP heat-inversion experiment (Holl, Koltun & Thuerey, NeurIPS 2022)."""

from ._damping import (
    damped_inverse_kernel as damped_inverse_kernel,
    inverse_diffusion as inverse_diffusion,
    log_inverse_kernel as log_inverse_kernel,
)
from ._objectives import (
    InversionErrors as InversionErrors,
    PhysicsLoss as PhysicsLoss,
    SIPLoss as SIPLoss,
    inversion_errors as inversion_errors,
    reconstruct as reconstruct,
)
from ._sources import (
    heat_inversion_sampler as heat_inversion_sampler,
    random_heat_sources as random_heat_sources,
)
