"""The captioned family: a quality evaluator fewstep trains on any captioned image folder.

An image -> caption-concept network (`network.py`) learns which caption words and word pairs
(`vocab.py`) an image shows; its penultimate features give a domain FID against held-out real
images, and its predicted concepts checked against a prompt give an alignment score
(`evaluation.py`). Trained by `train.py` (`fewstep evaluator train`, or `fewstep zoo train
--data imagefolder:PATH`), it is stored in the pipeline directory (`fewstep_evaluator/`), which
makes that pipeline, its distilled students and their bundles members of this family.
"""

from fewstep.families.captioned.store import EVALUATOR_DIR, CaptionEvaluator

__all__ = ["EVALUATOR_DIR", "CaptionEvaluator"]
