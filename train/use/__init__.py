"""Using a finished run: ``load_model``, the preprocessing of new images (DICOM too), predict, export, their CLI."""
