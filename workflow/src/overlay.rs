//! DIGITS' segmentation view drawn: the image windowed to 8 bits, the
//! predicted classes filled and outlined, the ground truth outlined just
//! outside its mask; and the PNG files `lvc infer` writes.

use std::path::Path;

use image::{ImageEncoder, Rgb, RgbImage};
use lvc_data::atomic::write_atomic;

use crate::failure::{fail, Failed};

/// Colours of predicted classes 1, 2, … (fill and contour).
pub const CLASS_COLOURS: [[u8; 3]; 3] = [[235, 45, 45], [45, 130, 255], [235, 60, 235]];
/// Ground-truth contour.
pub const TRUTH_COLOUR: [u8; 3] = [40, 230, 60];

/// The image's first channel mapped to 8 bits between its 0.5th and 99.5th
/// percentiles (MRI values have a long bright tail).
pub fn window(pixels: &[f32]) -> Vec<u8> {
    let mut sorted: Vec<f32> = pixels.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let at = |q: f64| {
        sorted
            .get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let (low, high) = (at(0.005), at(0.995));
    let span = (high - low).max(f32::EPSILON);
    pixels.iter().map(|&v| ((v - low) / span * 255.0).clamp(0.0, 255.0).round() as u8).collect()
}

/// Pixels of `class` with a 4-neighbour of another class (or the border)
/// when `inside`; pixels of other classes next to `class` otherwise.
pub fn contour(mask: &[u8], width: usize, height: usize, class: u8, inside: bool) -> Vec<bool> {
    let at = |x: isize, y: isize| {
        (x >= 0 && y >= 0 && (x as usize) < width && (y as usize) < height)
            .then(|| mask[y as usize * width + x as usize] == class)
    };
    let mut edge = vec![false; width * height];
    for y in 0..height as isize {
        for x in 0..width as isize {
            let here = at(x, y) == Some(true);
            let neighbours = [at(x - 1, y), at(x + 1, y), at(x, y - 1), at(x, y + 1)];
            edge[y as usize * width + x as usize] = if inside {
                here && neighbours.iter().any(|n| *n != Some(true))
            } else {
                !here && neighbours.contains(&Some(true))
            };
        }
    }
    edge
}

/// The overlay at native size, then upscaled by `scale`.
pub fn overlay(
    gray: &[u8],
    width: usize,
    height: usize,
    predicted: &[u8],
    truth: Option<&[u8]>,
    opacity: f32,
    scale: u32,
) -> RgbImage {
    let mut rgb: Vec<[u8; 3]> = gray.iter().map(|&g| [g, g, g]).collect();
    for (k, colour) in CLASS_COLOURS.iter().enumerate() {
        let class = (k + 1) as u8;
        for (px, _) in rgb.iter_mut().zip(predicted).filter(|(_, &p)| p == class) {
            for c in 0..3 {
                px[c] = (f32::from(px[c]) * (1.0 - opacity) + f32::from(colour[c]) * opacity)
                    .round() as u8;
            }
        }
        for (px, _) in
            rgb.iter_mut().zip(contour(predicted, width, height, class, true)).filter(|(_, e)| *e)
        {
            *px = *colour;
        }
        if let Some(truth) = truth {
            for (px, _) in
                rgb.iter_mut().zip(contour(truth, width, height, class, false)).filter(|(_, e)| *e)
            {
                *px = TRUTH_COLOUR;
            }
        }
    }
    RgbImage::from_fn(width as u32 * scale, height as u32 * scale, |x, y| {
        Rgb(rgb[(y / scale) as usize * width + (x / scale) as usize])
    })
}

/// PNG bytes from an encoder call.
pub fn png_bytes(
    encode: impl FnOnce(image::codecs::png::PngEncoder<&mut Vec<u8>>) -> image::ImageResult<()>,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    encode(image::codecs::png::PngEncoder::new(&mut bytes)).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// An RGB picture as PNG bytes.
pub fn rgb_png(picture: &RgbImage) -> Result<Vec<u8>, String> {
    png_bytes(|e| {
        e.write_image(
            picture.as_raw(),
            picture.width(),
            picture.height(),
            image::ExtendedColorType::Rgb8,
        )
    })
}

/// Writes encoded PNG bytes to `path` atomically (exit code 1 on failure).
pub fn write_png(path: &Path, bytes: Result<Vec<u8>, String>) -> Result<(), Failed> {
    let bytes = bytes.map_err(|e| fail(1, format!("cannot encode {}: {e}", path.display())))?;
    write_atomic(path, &bytes).map_err(|e| fail(1, format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_spreads_the_range_and_clips_outliers() {
        let mut pixels: Vec<f32> = (0..1000).map(|v| v as f32).collect();
        pixels.push(1e6);
        let w = window(&pixels);
        assert_eq!(w[0], 0);
        assert_eq!(*w.last().unwrap_or(&0), 255);
        assert!((120..=135).contains(&w[500]), "mid-grey, got {}", w[500]);
    }

    #[test]
    fn contours_lie_inside_the_prediction_and_outside_the_truth() {
        // 4x4 with a 2x2 square of class 1 in the middle.
        let mut mask = vec![0u8; 16];
        for i in [5, 6, 9, 10] {
            mask[i] = 1;
        }
        let inner = contour(&mask, 4, 4, 1, true);
        assert_eq!(
            inner.iter().filter(|e| **e).count(),
            4,
            "every pixel of a 2x2 square is on its edge"
        );
        let outer = contour(&mask, 4, 4, 1, false);
        assert_eq!(
            outer.iter().enumerate().filter(|(_, e)| **e).map(|(i, _)| i).collect::<Vec<_>>(),
            vec![1, 2, 4, 7, 8, 11, 13, 14]
        );
    }

    #[test]
    fn overlay_blends_the_fill_and_draws_both_contours() {
        let gray = vec![100u8; 25];
        let mut predicted = vec![0u8; 25];
        for i in [6, 7, 8, 11, 12, 13, 16, 17, 18] {
            predicted[i] = 1;
        }
        let picture = overlay(&gray, 5, 5, &predicted, Some(&predicted), 0.5, 2);
        assert_eq!(picture.dimensions(), (10, 10));
        let px = |x: u32, y: u32| picture.get_pixel(x * 2, y * 2).0;
        // 0.5 · 100 + 0.5 · (235, 45, 45), rounded.
        assert_eq!(px(2, 2), [168, 73, 73], "centre: filled, not on the contour");
        assert_eq!(px(1, 1), CLASS_COLOURS[0], "prediction contour");
        assert_eq!(px(0, 2), TRUTH_COLOUR, "truth contour outside the mask");
        assert_eq!(px(0, 0), [100, 100, 100]);
    }
}
