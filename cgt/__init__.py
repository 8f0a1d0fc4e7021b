"""cgt: one small library behind the GAN-transfer textbook.

Chapters import from here and never copy code out of it.  Sub-modules are
organised by concept: :mod:`cgt.data` (embedded datasets, splits, few-shot
subsets), :mod:`cgt.profiles` (experiment sizes per profile), :mod:`cgt.runs`
(run records and provenance), :mod:`cgt.plots` (figures) and :mod:`cgt.book`
(the papermill → Jupyter Book pipeline).
"""

from .allocator import keep_freed_memory

__version__ = "0.1.0"

keep_freed_memory()  # a CPU step's fresh pages otherwise cost more than its sums (see there)
