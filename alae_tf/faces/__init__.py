"""Faces in photos, for the face models (FFHQ, CelebA-HQ, CelebA): find the face, crop it as the
model's training faces were cropped, move its w along attribute directions, put the result
back into the photo.

- ``landmarks``: the five points everything here works from (eye centres, nose tip, mouth
  corners), from a detector or from a file of 5 or 68 points per photo.
- ``align``: the crops (``ffhq``: the FFHQ quad; ``celeba``: the img_align_celeba crop;
  ``none``: the centre square), each returned with the transform that made it, and
  ``paste_back``, which warps a face into the photo through that transform.
- ``detect``: faces and their five landmarks by MTCNN (the PyPI ``mtcnn`` package: its weights
  ship inside the wheel, nothing is downloaded).
- ``directions``: attribute directions in W (the authors' files, or fitted here from two
  labelled sets) and the authors' edit formula.

Importing this package loads no TensorFlow (``detect`` loads it when it runs).
"""

# How a model's photos are cropped (a preset's ``face_alignment``).
ALIGNMENTS = ("ffhq", "celeba", "none")
