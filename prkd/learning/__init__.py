"""Training the four configurations of Sec. 4.1 through the run registry:

* ``objectives``      -- L_task, R(phi), L_cdp, L_feat and the weighted sums of Eqs. (4) and (7);
* ``teacher_targets`` -- the frozen teacher's mean CDPs and bottleneck features, cached per image;
* ``loop``            -- the training loop, top to bottom: ``train_step``, ``fit`` (epochs); writes no files;
* ``train``           -- ``get_or_train``: the registry's side of a run (checkpoints, resume, one trainer
  per run), the only writer of its files;
* ``evaluation``      -- test PSNR/SSIM per image, inference time, seeded generators;
* ``diagnostics``     -- what the optics did: mask drift, speckle contrast, init correlation, L_cdp.
"""

from prkd.learning.train import (STUDENT_ALPHA, STUDENT_BETA, RunFailedError, TrainingDiverged,
                                 TrainingInterrupted,
                                 check_teacher_fits, get_or_train, teacher_config)

__all__ = ["STUDENT_ALPHA", "STUDENT_BETA", "RunFailedError", "TrainingDiverged", "TrainingInterrupted",
           "check_teacher_fits", "get_or_train", "teacher_config"]
