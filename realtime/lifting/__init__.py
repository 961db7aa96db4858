"""2D -> 3D lifting with a probabilistic 3D pose prior (Tome et al. 2017, sections 4 and 5.3)."""
from realtime.lifting.camera import Camera
from realtime.lifting.lifter import LiftResult, Lifter
from realtime.lifting.prior import PosePrior, PriorError
from realtime.lifting.setup import LiftingSetup

__all__ = ["Camera", "Lifter", "LiftingSetup", "LiftResult", "PosePrior", "PriorError"]
