"""trainax's configurations (`tx.configuration.*`), over `trainax_fd.configurations`."""

from ._configuration import (
    BaseConfiguration as BaseConfiguration,
    Composite as Composite,
    DivertedChain as DivertedChain,
    DivertedChainBranchOne as DivertedChainBranchOne,
    MixChainPostPhysics as MixChainPostPhysics,
    Residuum as Residuum,
    Supervised as Supervised,
)
