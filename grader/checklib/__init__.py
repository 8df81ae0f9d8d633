"""The check authors' toolkit: what every part's trusted `checks.py` needs besides the examination of
its own ideas. One home for each piece, so that a rule (how float32 rounding is mirrored, what a
relative error is, how the ring of Gaussians is drawn, how a copy is told from a sample) is written once.

- `numerics`: the float32 values the student's code receives, relative errors.
- `modes`: mixtures of 2-D Gaussian modes (the GAN's ring, diffusion's per-run constellation) and mode statistics.
- `digits`: scikit-learn's bundled 8x8 digits, binarised or scaled.
- `digit_mixtures`: binary digits drawn per run from a secret source whose density is exact.
- `features`: the staff CNN's features of digits, pairwise distances, k-NN precision/recall and density/coverage.
- `copies`: whether samples are new or near copies of training data.
- `digit_styles`: the digits drawn afresh in a secret style per run (data the student cannot hold).
- `mistakes`: feedback that names the common mistake a wrong value shows (`Suspects`).
- `plots`: PNG figures drawn with matplotlib's object API.
"""
