"""Training: the loop (``loop``), its recipes (``config``), callbacks (``callbacks``, the film's
``recorder``, a time ``budget``), the machine's set-up (``hardware``), one batch's step
(``step``, with the bfloat16 products of ``gemm`` and the augmentation of ``augment``), and runs
in a child process for the app (``jobs``). No figures here."""
