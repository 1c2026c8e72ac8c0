"""bpfns.testing: property-based fuzzing of BPF namespace id allocation.

Needs the ``hypothesis`` extra: ``pip install -e '.[hypothesis]'`` in a checkout (from a
package index, ``pip install 'bpfns[hypothesis]'``). Without it, importing this module
raises ModuleNotFoundError saying so.

* :class:`BpfnsMachine`: a Hypothesis state machine to subclass (configure it with
  class attributes) that drives tasks and bpf() commands and checks every step against
  :class:`RefModel`, an independent reference model.
* Strategies: :func:`kernels`, :func:`namespace_trees`, :func:`operations` (with
  :func:`run_operations`), :func:`schedules` (for simulated CPUs).

Importing this module defines no test, so pytest collects nothing from it.
"""

from .._errors import HYPOTHESIS_HINT

try:
    import hypothesis  # noqa: F401 - the extra this module needs
except ModuleNotFoundError as err:  # pragma: no cover - the tests run with Hypothesis
    raise ModuleNotFoundError(
        f"bpfns.testing needs Hypothesis, which is not installed: {HYPOTHESIS_HINT}",
        name=err.name,
    ) from None

from ._machine import BpfnsMachine, FdRef, Primed, errorcode_of
from ._model import RefModel, RefNs, RefObj
from ._strategies import Op, kernels, namespace_trees, operations, run_operations, schedules

__all__ = [
    "BpfnsMachine",
    "FdRef",
    "Op",
    "Primed",
    "RefModel",
    "RefNs",
    "RefObj",
    "errorcode_of",
    "kernels",
    "namespace_trees",
    "operations",
    "run_operations",
    "schedules",
]
