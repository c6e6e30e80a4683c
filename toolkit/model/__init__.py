"""The RT-IGEV student network, its configuration and its checkpoints."""

from toolkit.model.checkpoint import build_student, load_student, save_student
from toolkit.model.config import StudentConfig
from toolkit.model.network import RTIGEVStereo

__all__ = ["StudentConfig", "RTIGEVStereo", "build_student", "load_student", "save_student"]
