"""The paper's studies (docs/paper.md sections 2 and 3), rerun on any model: ``i2s experiment``.

Each study is one module with ``run(context, images) -> Section``; :func:`run_studies` runs
several into one ``report.md`` and ``results.json``. ``edits`` stands for the three edit
studies (morph, crossover, expression); ``all`` for every study.
"""

from i2s.experiments.context import StudyContext, StudyOptions
from i2s.experiments.runner import GROUPS, STUDIES, expand_names, run_studies

__all__ = ["GROUPS", "STUDIES", "StudyContext", "StudyOptions", "expand_names", "run_studies"]
