"""The class splits and shot counts the method chapters use, named once.

Each paper's setting is mapped onto data this project can build offline.
"""

CGANTRANSFER = {
    # Pretrained on 8 Fashion-MNIST classes; the new classes are close relatives of sources.
    "source_classes": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "sneaker", "bag"],
    "target_classes": ["shirt", "ankle-boot"],
    "shots": [10, 25, 100, 600],
    # The ImageNet -> Places365 analogue: a different dataset as the target.
    "cross_dataset": ("animal_shape", ["cat", "dog", "horse", "elephant", "giraffe"]),
}

# CIFAR-100's fine label names in label order (torchvision's meta file).
CIFAR100_CLASSES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
    "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
    "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]

# cGANTransfer's CIFAR-100 80 -> 20 split is not published. Ours: every fifth label
# (4, 9, ..., 99) is a target class, the other 80 are the source classes.
CGANTRANSFER_CIFAR100 = {
    "source_classes": [c for i, c in enumerate(CIFAR100_CLASSES) if i % 5 != 4],
    "target_classes": [c for i, c in enumerate(CIFAR100_CLASSES) if i % 5 == 4],
    # The paper's "600" per class counts train + test images; the training split has 500.
    "shots": [500, 300, 100],
}

# MineGAN's five Places365 classes, which cGANTransfer reuses (500 images each).
CGANTRANSFER_PLACES365 = ["alley", "arch", "art_gallery", "auditorium", "ballroom"]

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
