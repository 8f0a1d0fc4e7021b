"""One metric pipeline for every chapter: features, FID/KID/KMMD, classifier scores."""

from .features import (HEADS, FeatureNetwork, class_probabilities, extract_features,
                       feature_network_id, feature_network_info, load_feature_network, predict)
from .evaluate import (COLLAPSE_STD, SCORING_SEED, SELECTION_SEED, ImageScoring, Scoring, SplitScoring, at_32px, distances,
                       generate, sample_features, score_generator, spread)
from .scores import (classifier_score, conditional_accuracy, fid_from_features,
                     frechet_distance, inception_path, kid_from_features, kid_subsets, kmmd,
                     moments, real_statistics)

__all__ = ["HEADS", "FeatureNetwork", "class_probabilities", "classifier_score",
           "conditional_accuracy", "extract_features", "generate", "score_generator", "feature_network_id",
           "feature_network_info", "fid_from_features", "frechet_distance", "inception_path",
           "kid_from_features", "kid_subsets", "kmmd", "load_feature_network", "moments",
           "predict", "real_statistics", "spread", "COLLAPSE_STD", "SCORING_SEED", "SELECTION_SEED",
           "ImageScoring", "Scoring", "SplitScoring", "at_32px", "distances", "sample_features"]
