"""Test-only pacing (a stand-in for a slow GPU step, named so): every training step sleeps.

Put this folder on PYTHONPATH and set ORCH_TEST_STEP_SECONDS: each `Trainer.training_step`
then takes at least that long, so a test that needs training to outlast a time limit does
so on any machine, however fast.
"""

import os

_SECONDS = float(os.environ.get("ORCH_TEST_STEP_SECONDS") or 0)

if _SECONDS > 0:
    import time

    from transformers import trainer as _trainer

    _step = _trainer.Trainer.training_step

    def _paced_step(self, *args, **kwargs):
        time.sleep(_SECONDS)
        return _step(self, *args, **kwargs)

    _trainer.Trainer.training_step = _paced_step
