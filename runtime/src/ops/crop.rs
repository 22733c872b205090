//! Crop: `bottom[0]` cut to `bottom[1]`'s shape on every axis from `axis`
//! on, at per-axis offsets resolved by the compiler (a single offset is
//! broadcast; parameterless old-style crops get computed offsets).

use tch::Tensor;

use super::{LowerCtx, LowerResult, Lowered};
use lvc_compiler::ops::crop::CropOp;

#[derive(Debug, Clone, PartialEq)]
pub struct Crop {
    pub axis: usize,
    /// One offset per axis from `axis` on.
    pub offsets: Vec<i64>,
}

impl Lowered for Crop {
    /// The reference blob contributes only its shape (and gets no gradient).
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let reference = bottoms[1].size();
        let cropped =
            self.offsets.iter().enumerate().fold(bottoms[0].shallow_clone(), |t, (i, &offset)| {
                let axis = self.axis + i;
                t.narrow(axis as i64, offset, reference[axis])
            });
        vec![cropped]
    }
}

/// Offsets come from the compiler (written or, for old parameterless
/// crops, computed from the graph): `crop_offsets` has one per axis of
/// bottom 0 (0 before the start axis).
pub(crate) fn lower(op: &CropOp, ctx: &LowerCtx<'_>) -> LowerResult {
    let rank = ctx.bottoms.first().map_or(0, |b| b.rank());
    let Some(axis) = ctx.bottoms.first().and_then(|b| b.canonical_axis(op.params.axis.value))
    else {
        return Err(format!("crop axis {} out of range", op.params.axis.value));
    };
    match ctx.node.crop_offsets.as_deref() {
        Some(all) if all.len() == rank => {
            Ok(Box::new(Crop { axis, offsets: all[axis..].to_vec() }))
        }
        _ => Err("the crop offsets could not be determined".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    #[test]
    fn crops_to_the_reference_shape_at_the_offsets() {
        let x = t(&(0..24).map(|v| v as f32).collect::<Vec<_>>(), &[1, 2, 3, 4]);
        let reference = t(&[0.; 4], &[1, 1, 2, 2]);
        let spatial = Crop { axis: 2, offsets: vec![1, 1] };
        let y = &spatial.forward(&[x.shallow_clone(), reference.shallow_clone()], &[], false)[0];
        assert_eq!(y.size(), vec![1, 2, 2, 2]);
        assert_close(y, &[5., 6., 9., 10., 17., 18., 21., 22.], 0.0);
        let with_channels = Crop { axis: 1, offsets: vec![1, 0, 2] };
        let y = &with_channels.forward(&[x, reference], &[], false)[0];
        assert_close(y, &[14., 15., 18., 19.], 0.0);
    }
}
