"""The class splits and shot counts the method chapters use, named once.

They follow ``../shared/DATA.md``'s suggested roles: each paper's setting mapped
onto data this project can build offline.
"""

CGANTRANSFER = {
    # Pretrained on 8 Fashion-MNIST classes; the new classes are close relatives of sources.
    "source_classes": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "sneaker", "bag"],
    "target_classes": ["shirt", "ankle-boot"],
    "shots": [10, 25, 100, 600],
    # The ImageNet -> Places365 analogue: a different dataset as the target.
    "cross_dataset": ("animal_shape", ["cat", "dog", "horse", "elephant", "giraffe"]),
}

BSA = {
    "targets": {"lfw": ["face"], "emoji": "face-* subgroups"},
    "shots": [25, 50, 100],
}

CTF = {
    "high_quality": ("fashion_mnist", 32),
    "low_quality_sizes": [8, 16],
    "low_quality_other_domain": "digits",
    "high_quality_fraction": 0.65,
    "many_classes": "hanzi",
}
