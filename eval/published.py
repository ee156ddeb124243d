"""Published test balanced accuracy of ResNet-50 (Holste et al., arXiv 2208.13365, Table 1)."""

PUBLISHED_BACC = {
    "nih-cxr-lt": {"ce": 0.115, "cb-ce": 0.269, "rw-ce": 0.260, "focal": 0.122, "cb-focal": 0.232,
                   "rw-focal": 0.197, "ldam": 0.178, "cb-ldam": 0.235, "cb-ldam-drw": 0.281, "rw-ldam": 0.279,
                   "rw-ldam-drw": 0.289, "mixup": 0.118, "balanced-mixup": 0.155, "crt": 0.294, "tau-norm": 0.214},
    "mimic-cxr-lt": {"ce": 0.169, "cb-ce": 0.227, "rw-ce": 0.211, "focal": 0.172, "cb-focal": 0.191,
                     "rw-focal": 0.239, "ldam": 0.165, "cb-ldam": 0.225, "cb-ldam-drw": 0.267, "rw-ldam": 0.243,
                     "rw-ldam-drw": 0.275, "mixup": 0.176, "balanced-mixup": 0.168, "crt": 0.296,
                     "tau-norm": 0.230},
}
