//! lvc's own messages (not in caffe.proto). Field numbers ≥ 1001 in Caffe's
//! messages keep clear of upstream numbering; see docs/schema_extensions.md.

use super::*;

message!(
    /// `dice_param` (LayerParameter field 1001) for the native `Dice` /
    /// `DiceLoss` layers that replace DIGITS' Python Dice layer.
    DICE_PARAMETER = "DiceParameter" [
    lvc_ext(opt(1, "smooth", FLOAT, F(1.0))),
    lvc_ext(opt(2, "ignore_label", INT32, NONE)),
    lvc_ext(rep(3, "class_weight", FLOAT)),
    // Score of an image where prediction and label are both empty.
    lvc_ext(opt(4, "empty_score", FLOAT, F(1.0))),
]);

message!(
    /// `augment_param` (LayerParameter field 1002): on-the-fly augmentation of
    /// an image/label pair. Every probability defaults to 0 (off).
    AUGMENT_PARAMETER = "AugmentParameter" [
    lvc_ext(opt(1, "seed", UINT32, I(0))),
    lvc_ext(opt(2, "flip_prob", FLOAT, F(0.0))),
    lvc_ext(opt(3, "rot90_prob", FLOAT, F(0.0))),
    lvc_ext(opt(4, "affine_prob", FLOAT, F(0.0))),
    lvc_ext(opt(5, "max_rotation_deg", FLOAT, F(0.0))),
    lvc_ext(opt(6, "max_scale", FLOAT, F(0.0))),
    lvc_ext(opt(7, "max_shift", FLOAT, F(0.0))),
    lvc_ext(opt(8, "elastic_prob", FLOAT, F(0.0))),
    lvc_ext(opt(9, "elastic_alpha", FLOAT, F(0.0))),
    lvc_ext(opt(10, "elastic_sigma", FLOAT, F(0.0))),
    lvc_ext(opt(11, "intensity_prob", FLOAT, F(0.0))),
    lvc_ext(opt(12, "max_intensity_scale", FLOAT, F(0.0))),
    lvc_ext(opt(13, "max_intensity_shift", FLOAT, F(0.0))),
    lvc_ext(opt(14, "gamma_prob", FLOAT, F(0.0))),
    lvc_ext(opt(15, "max_gamma", FLOAT, F(0.0))),
    lvc_ext(opt(16, "contrast_prob", FLOAT, F(0.0))),
    lvc_ext(opt(17, "max_contrast", FLOAT, F(0.0))),
    lvc_ext(opt(18, "noise_prob", FLOAT, F(0.0))),
    lvc_ext(opt(19, "noise_std", FLOAT, F(0.0))),
]);
