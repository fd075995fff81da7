"""Built-in recipe stages; importing this package registers them with the runner."""

from fewstep.stages import compile as _compile  # noqa: F401
from fewstep.stages import distill as _distill  # noqa: F401
from fewstep.stages import eval as _eval  # noqa: F401
from fewstep.stages import report as _report  # noqa: F401
