"""The paper's studies (docs/paper.md sections 2 and 3), rerun on any model: ``i2s experiment``.

Each study is one module with ``run(study, images) -> Section``; :func:`run_studies` runs
several into one ``report.md`` and ``results.json``.
"""

from i2s.experiments.runner import STUDIES, run_studies
from i2s.experiments.study import Study, StudySettings

__all__ = ["STUDIES", "Study", "StudySettings", "run_studies"]
