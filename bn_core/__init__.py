"""bn_core: batch normalization by hand and through PyTorch.

The library behind BatchNorm Lab. It imports only torch, numpy and pandas
(scikit-learn only in ``digits.py``) and never streamlit or altair, so every
experiment can be run, tested and benchmarked without a UI.

Reference: Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep
Network Training by Reducing Internal Covariate Shift", arXiv:1502.03167.
"""
