"""Shape-annotated array aliases shared across the package (axis names as in the docs)."""

from typing import TypeAlias

from jaxtyping import Array, ArrayLike, Float, Int

#: One sample: a channel axis followed by one axis per spatial dimension.
State: TypeAlias = Float[Array, "channels *spatial"]  # noqa: F821
#: One sample with ghost layers: `(channels, *padded)`.
Padded: TypeAlias = Float[Array, "channels *padded"]  # noqa: F821
#: A trajectory of one sample: `(time, channels, *spatial)`.
Trajectory: TypeAlias = Float[Array, "time channels *spatial"]
#: A scalar array (loss, coefficient).
Scalar: TypeAlias = Float[Array, ""]
#: Any float array (coefficients that broadcast against a `State`).
AnyArray: TypeAlias = Float[Array, "..."]
#: A physical coefficient as given by a user: a Python float or anything array-like.
Coefficient: TypeAlias = float | Float[ArrayLike, "..."]
#: Flat window indices of an epoch, cut into equal batches: `(batches, batch)`.
EpochBatches: TypeAlias = Int[Array, "batches batch"]
#: Flat window indices of one batch: `(batch,)`.
BatchIndex: TypeAlias = Int[Array, "batch"]  # noqa: F821
#: Convolution weights of an architecture: `(out_channels, in_channels, *kernel)`.
ConvWeight: TypeAlias = Float[Array, "out_channels in_channels *kernel"]
