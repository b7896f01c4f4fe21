"""SavedModel (TF Serving) and TF.js export of trained encoders and generators.

Installed as ``alae_tf.export``. Not written yet: it is a later milestone of the project (see
the README's Status section). Nothing here is imported by the rest of the package.
"""
