"""The CXR-LT 2024 (MICCAI; MIMIC-CXR-JPG, task 1: 40 classes, task 2: 26) and 2026 (ISBI; PadChest + NIH,
30 classes) releases: file names, columns and class lists as published (see the README's dataset table)."""
from .release import Release

CXR_LT_2024_CLASSES = [
    "Adenopathy", "Atelectasis", "Azygos Lobe", "Calcification of the Aorta", "Cardiomegaly", "Clavicle Fracture",
    "Consolidation", "Edema", "Emphysema", "Enlarged Cardiomediastinum", "Fibrosis", "Fissure", "Fracture",
    "Granuloma", "Hernia", "Hydropneumothorax", "Infarction", "Infiltration", "Kyphosis", "Lobar Atelectasis",
    "Lung Lesion", "Lung Opacity", "Mass", "Nodule", "Normal", "Pleural Effusion", "Pleural Other",
    "Pleural Thickening", "Pneumomediastinum", "Pneumonia", "Pneumoperitoneum", "Pneumothorax",
    "Pulmonary Embolism", "Pulmonary Hypertension", "Rib Fracture", "Round(ed) Atelectasis",
    "Subcutaneous Emphysema", "Support Devices", "Tortuous Aorta", "Tuberculosis"]
# task 2: the CXR-LT 2023 classes ("No Finding" renamed "Normal"), in the order of the 40
TASK2 = {"Atelectasis", "Calcification of the Aorta", "Cardiomegaly", "Consolidation", "Edema", "Emphysema",
         "Enlarged Cardiomediastinum", "Fibrosis", "Fracture", "Hernia", "Infiltration", "Lung Lesion",
         "Lung Opacity", "Mass", "Normal", "Nodule", "Pleural Effusion", "Pleural Other", "Pleural Thickening",
         "Pneumomediastinum", "Pneumonia", "Pneumoperitoneum", "Pneumothorax", "Subcutaneous Emphysema",
         "Support Devices", "Tortuous Aorta"}
CXR_LT_2024_TASK2_CLASSES = [c for c in CXR_LT_2024_CLASSES if c in TASK2]
CXR_LT_2026_CLASSES = [
    "Normal", "aortic elongation", "cardiomegaly", "pleural effusion", "Nodule", "atelectasis", "pleural thickening",
    "aortic atheromatosis", "Support Devices", "alveolar pattern", "fracture", "Hernia", "Emphysema", "azygos lobe",
    "Hydropneumothorax", "Kyphosis", "Mass", "Pneumothorax", "Subcutaneous Emphysema", "pneumoperitoneo",
    "vascular hilar enlargement", "vertebral degenerative changes", "hyperinflated lung", "interstitial pattern",
    "central venous catheter", "hypoexpansion", "bronchiectasis", "hemidiaphragm elevation", "sternotomy",
    "calcified densities"]
TRAIN_2024 = "train_labeled.csv"
TRAIN_2026 = "CXRLT_2026_training.csv"


def _mimic_2024(name: str, task: int, classes: list[str]) -> Release:
    """train_labeled.csv (required; the 40 classes, of which task 2 reads its 26), the development and test files of
    the task when present (val and test; a missing one is made from the training patients, 10% by default); fpath
    is relative to the MIMIC-CXR-JPG 2.0.0 root (--images)."""
    other = [c for c in CXR_LT_2024_CLASSES if c not in classes]
    return Release(name, {TRAIN_2024: "train", f"development_labeled_task{task}.csv": "val",
                          f"test_labeled_task{task}.csv": "test"}, classes, "dicom_id", "subject_id",
                   path_col="fpath", study_col="study_id", view_col="ViewPosition",
                   ignored_cols=("ViewCodeSequence_CodeMeaning", *other))


RELEASES = {r.name: r for r in [
    _mimic_2024("cxr-lt-2024", 1, CXR_LT_2024_CLASSES),
    _mimic_2024("cxr-lt-2024-task2", 2, CXR_LT_2024_TASK2_CLASSES),
    # one training file, no labelled val or test: both made from the training patients (10% each by default);
    # images found by file name under --images (PadChest's folders and NIH's images_NNN)
    Release("cxr-lt-2026", {TRAIN_2026: "train"}, CXR_LT_2026_CLASSES, "ImageID", "PatientID",
            ignored_cols=("StudyDate_DICOM",)),
]}
