"""What a reader sees: figures (``plots``), the reproduction's tables and figures (``report``), the study's
(``study_report``) and the JupyterLab panels (``widgets``). Views read runs; they never train, except the
distillation explorer's button, which goes through ``prkd.learning.get_or_train``."""
