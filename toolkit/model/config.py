"""The student network's configuration: the few numbers that travel with its weights."""

from __future__ import annotations

import dataclasses

from toolkit.errors import CheckpointError


@dataclasses.dataclass
class StudentConfig:
    """Hyper-parameters of the RT-IGEV student.

    Attributes:
        max_disp: largest disparity in full-resolution pixels covered by the cost volume;
            a multiple of 32 so the 1/4-resolution volume (max_disp/4 planes) survives the
            three stride-2 steps of the 3D hourglass.
        hidden_dim: channels of the ConvGRU hidden state (the published network uses 96;
            the feature trunk fixes the context input at 96 channels).
        corr_levels: levels of the geometry-volume pyramid looked up each iteration.
        corr_radius: lookup radius in disparity planes at each level.
        iters: ConvGRU refinement iterations used at inference (and baked into an export).
    """

    max_disp: int = 192
    hidden_dim: int = 96
    corr_levels: int = 2
    corr_radius: int = 4
    iters: int = 8

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise CheckpointError when a field cannot describe a working network."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CheckpointError(f"student config field {field.name}={value!r} is invalid; expected a positive integer")
        if self.max_disp % 32:
            raise CheckpointError(f"student config max_disp={self.max_disp} is invalid; expected a multiple of 32")
        if self.max_disp // 4 < 2 ** (self.corr_levels - 1):
            raise CheckpointError(
                f"student config corr_levels={self.corr_levels} is too deep for max_disp={self.max_disp}; "
                "expected max_disp/4 >= 2**(corr_levels-1)"
            )

    def to_dict(self) -> dict:
        """Plain dict of the fields (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StudentConfig":
        """Build a config from ``to_dict()`` output; unknown keys are an error, missing keys take defaults.

        Args:
            data: mapping of field name to value.

        Returns:
            StudentConfig.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"student config has unknown fields {unknown}; expected only {sorted(known)}")
        return cls(**data)
