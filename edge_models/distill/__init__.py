"""Distillation from frozen teachers into JEPA students (driven by ``glasses-export distill``)."""

from edge_models.distill.loop import DistillConfig, DistillResult, distill
from edge_models.distill.teachers import TEACHERS, Teacher, load_teacher

__all__ = ["TEACHERS", "DistillConfig", "DistillResult", "Teacher", "distill", "load_teacher"]
