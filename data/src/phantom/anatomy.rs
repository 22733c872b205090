//! The phantom's anatomy: per-patient parameters drawn from the seed, the
//! heart's shape at each slice and phase (the same curves give the contours
//! and the rendered edges), and the renderer.
//!
//! Image coordinates throughout: x = column, y = row (downwards), in pixels;
//! angles from +x towards +y. Lengths in the parameters are in mm.

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::{PI, TAU};

pub(crate) const SIZE: usize = 256;
pub(crate) const PHASES: usize = 20;
/// 12 bits stored: raw values stay well below 4096.
pub(crate) const MAX_RAW: f64 = 4095.0;

/// Pathology group, from the case id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    HeartFailureInfarct,
    HeartFailure,
    Hypertrophy,
    Normal,
}

impl Group {
    pub(crate) fn of_case(case: &str) -> Self {
        if case.starts_with("SC-HF-I-") {
            Self::HeartFailureInfarct
        } else if case.starts_with("SC-HF-NI-") {
            Self::HeartFailure
        } else if case.starts_with("SC-HYP-") {
            Self::Hypertrophy
        } else {
            Self::Normal
        }
    }
}

/// Relative intensities (blood pool = 1) of the tissues in bSSFP cine.
struct Tissue;
impl Tissue {
    const MYOCARDIUM: f64 = 0.24;
    const MUSCLE: f64 = 0.30;
    const LUNG: f64 = 0.06;
    const LIVER: f64 = 0.40;
    const BONE: f64 = 0.48;
    const CORTEX: f64 = 0.12;
}

/// Everything that differs between patients.
#[derive(Debug, Clone)]
pub(crate) struct Patient {
    /// Pixel spacing, mm (square pixels).
    pub spacing: f64,
    pub slices: usize,
    pub es_phase: usize,
    pub rr_ms: f64,
    /// Raw value of unbiased LV blood.
    pub blood_raw: f64,
    /// Noise σ relative to blood.
    noise: f64,
    /// LV centre at the base and its drift to the apex, px.
    center: (f64, f64),
    apex_drift: (f64, f64),
    /// Rotation of the whole heart (RV direction), rad.
    heart_angle: f64,
    r_endo_ed_mm: f64,
    /// ES/ED endocardial radius ratio.
    es_ratio: f64,
    wall_ed_mm: f64,
    /// (amplitude, phase) of the 2nd and 3rd harmonics of the endocardium.
    harmonics: [(f64, f64); 2],
    /// (amplitude, phase) of the wall-thickness variation around the ring.
    wall_variation: (f64, f64),
    /// Infarct: (angle, relative thinning).
    infarct: Option<(f64, f64)>,
    /// Papillary muscles: (angle offset from the RV direction, radius mm).
    papillary: [(f64, f64); 2],
    rv_size: f64,
    rv_intensity: f64,
    fat_intensity: f64,
    /// Body ellipse: centre (px), semi-axes (mm), subcutaneous fat (mm).
    body_center: (f64, f64),
    body_axes_mm: (f64, f64),
    fat_mm: f64,
    /// Multiplicative coil field: linear gradient and a surface-coil bump.
    bias_gradient: (f64, f64),
    coil: (f64, f64, f64, f64),
    /// Image Orientation (Patient): row and column direction cosines.
    pub orientation: [f64; 6],
    /// Seeds the fixed texture and lung vessels.
    texture_seed: u64,
}

/// A uniform value in [0, 1) from a seed and two indices (fixed per patient
/// without consuming the patient's random stream).
fn hash_unit(seed: u64, a: u32, b: u32) -> f64 {
    let mut z = seed ^ (u64::from(a) << 32 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    rng.gen_range(lo..hi)
}

impl Patient {
    pub(crate) fn draw(group: Group, rng: &mut ChaCha8Rng) -> Self {
        let (r_endo_ed_mm, es_ratio, wall_ed_mm) = match group {
            Group::Normal => {
                (uniform(rng, 23.0, 27.0), uniform(rng, 0.58, 0.68), uniform(rng, 7.0, 9.0))
            }
            Group::Hypertrophy => {
                (uniform(rng, 19.0, 23.0), uniform(rng, 0.45, 0.58), uniform(rng, 13.0, 17.0))
            }
            Group::HeartFailure => {
                (uniform(rng, 30.0, 35.0), uniform(rng, 0.82, 0.9), uniform(rng, 6.5, 8.5))
            }
            Group::HeartFailureInfarct => {
                (uniform(rng, 29.0, 34.0), uniform(rng, 0.8, 0.9), uniform(rng, 6.0, 8.0))
            }
        };
        let heart_angle = uniform(rng, -0.4, 0.4);
        let infarct = (group == Group::HeartFailureInfarct)
            .then(|| (uniform(rng, 0.0, TAU), uniform(rng, 0.35, 0.55)));
        let spacing = uniform(rng, 1.25, 1.5);
        // Keep the orientation orthonormal: rotate a nominal SAX plane.
        let (a, b) = (uniform(rng, -0.25, 0.25), uniform(rng, -0.25, 0.25));
        let row = normalize([0.72 + a, 0.62, -0.3 + b]);
        let col = normalize(orthogonalize([-0.2, 0.35 + b, -0.9 + a], row));
        let base_center =
            (uniform(rng, 128.0 - 14.0, 128.0 + 18.0), uniform(rng, 122.0 - 12.0, 122.0 + 14.0));
        Patient {
            spacing,
            slices: rng.gen_range(8..=11),
            es_phase: rng.gen_range(7..=9),
            rr_ms: uniform(rng, 700.0, 1050.0),
            blood_raw: uniform(rng, 150.0, 620.0),
            noise: uniform(rng, 0.03, 0.065),
            center: base_center,
            apex_drift: (uniform(rng, -4.0, 8.0), uniform(rng, 0.0, 10.0)),
            heart_angle,
            r_endo_ed_mm,
            es_ratio,
            wall_ed_mm,
            harmonics: [
                (uniform(rng, 0.02, 0.08), uniform(rng, 0.0, PI)),
                (uniform(rng, 0.0, 0.04), uniform(rng, 0.0, TAU)),
            ],
            wall_variation: (uniform(rng, 0.05, 0.2), uniform(rng, 0.0, TAU)),
            infarct,
            papillary: [
                (uniform(rng, 2.2, 2.6), uniform(rng, 2.5, 4.0)),
                (uniform(rng, 3.6, 4.1), uniform(rng, 2.5, 4.0)),
            ],
            rv_size: uniform(rng, 1.0, 1.3),
            rv_intensity: uniform(rng, 0.92, 1.15),
            fat_intensity: uniform(rng, 0.75, 1.1),
            body_center: (uniform(rng, 120.0, 136.0), uniform(rng, 136.0, 146.0)),
            body_axes_mm: (uniform(rng, 150.0, 178.0), uniform(rng, 98.0, 112.0)),
            fat_mm: uniform(rng, 6.0, 22.0),
            bias_gradient: (uniform(rng, -0.15, 0.15), uniform(rng, -0.25, 0.0)),
            coil: (
                uniform(rng, 60.0, 200.0),
                uniform(rng, 15.0, 60.0),
                uniform(rng, 0.15, 0.55),
                uniform(rng, 50.0, 90.0),
            ),
            orientation: [row[0], row[1], row[2], col[0], col[1], col[2]],
            texture_seed: rng.gen(),
        }
    }

    /// Millimetres to pixels.
    fn px(&self, mm: f64) -> f64 {
        mm / self.spacing
    }

    /// 0 at end-diastole (phase 0), 1 at end-systole, smooth in between;
    /// diastole is slower than systole as in a real cycle.
    pub(crate) fn contraction(&self, phase: usize) -> f64 {
        let es = self.es_phase as f64;
        let p = phase as f64;
        let t = if p <= es { p / es } else { 1.0 - (p - es) / (PHASES as f64 - es) };
        0.5 - 0.5 * (PI * t.clamp(0.0, 1.0)).cos()
    }

    /// Relative position along the long axis: 0 at the base, 1 at the apex.
    fn z(&self, slice: usize) -> f64 {
        slice as f64 / (self.slices - 1).max(1) as f64
    }

    /// The heart at one slice and phase.
    pub(crate) fn heart(&self, slice: usize, phase: usize) -> Heart {
        let z = self.z(slice);
        let c = self.contraction(phase);
        let taper = 1.0 - 0.58 * z.powf(1.6);
        let r_ed = self.px(self.r_endo_ed_mm) * taper;
        let r = r_ed * (1.0 - c * (1.0 - self.es_ratio));
        let wall = self.px(self.wall_ed_mm) * (1.0 - 0.15 * z);
        let center = (self.center.0 + self.apex_drift.0 * z, self.center.1 + self.apex_drift.1 * z);
        let rv_angle = self.heart_angle + PI + 0.35;
        let epi_mean = r_ed + wall;
        let rv_scale = self.rv_size * (1.0 - 0.75 * z).max(0.0) * (1.0 - 0.22 * c);
        let papillary = if (0.12..=0.8).contains(&z) {
            self.papillary
                .iter()
                .map(|&(offset, radius_mm)| {
                    (rv_angle + offset, self.px(radius_mm) * (1.0 + 0.2 * c))
                })
                .filter(|&(_, radius)| radius < 0.33 * r)
                .collect()
        } else {
            Vec::new()
        };
        Heart {
            center,
            r_endo: r,
            r_endo_ed: r_ed,
            wall_ed: wall,
            harmonics: self.harmonics,
            wall_variation: self.wall_variation,
            infarct: self.infarct,
            papillary,
            rv_angle,
            rv_center: (
                center.0 + 0.78 * epi_mean * rv_angle.cos(),
                center.1 + 0.78 * epi_mean * rv_angle.sin(),
            ),
            rv_radius: epi_mean * rv_scale,
        }
    }
}

fn normalize(v: [f64; 3]) -> [f64; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

fn orthogonalize(v: [f64; 3], unit: [f64; 3]) -> [f64; 3] {
    let d = v[0] * unit[0] + v[1] * unit[1] + v[2] * unit[2];
    [v[0] - d * unit[0], v[1] - d * unit[1], v[2] - d * unit[2]]
}

/// Wraps an angle difference into (−π, π].
fn wrap(a: f64) -> f64 {
    let r = a.rem_euclid(TAU);
    if r > PI {
        r - TAU
    } else {
        r
    }
}

/// The heart at one slice and phase, in pixels.
#[derive(Debug, Clone)]
pub(crate) struct Heart {
    pub center: (f64, f64),
    r_endo: f64,
    r_endo_ed: f64,
    wall_ed: f64,
    harmonics: [(f64, f64); 2],
    wall_variation: (f64, f64),
    infarct: Option<(f64, f64)>,
    /// (angle, radius px); each touches the endocardium from inside.
    papillary: Vec<(f64, f64)>,
    rv_angle: f64,
    rv_center: (f64, f64),
    rv_radius: f64,
}

impl Heart {
    fn shape(&self, theta: f64) -> f64 {
        let [(a2, p2), (a3, p3)] = self.harmonics;
        1.0 + a2 * (2.0 * (theta - p2)).cos() + a3 * (3.0 * (theta - p3)).cos()
    }

    /// Endocardial (blood pool) radius at `theta`: the i-contour.
    pub(crate) fn r_endo(&self, theta: f64) -> f64 {
        self.r_endo * self.shape(theta)
    }

    /// Epicardial radius: the myocardial area of each sector is that of
    /// end-diastole, so the wall thickens as the cavity shrinks.
    pub(crate) fn r_epi(&self, theta: f64) -> f64 {
        let (amp, phase) = self.wall_variation;
        let mut wall = self.wall_ed * (1.0 + amp * (theta - phase).cos());
        if let Some((angle, depth)) = self.infarct {
            wall *= 1.0 - depth * (-(wrap(theta - angle) / 0.55).powi(2)).exp();
        }
        let ed = self.r_endo_ed * self.shape(theta);
        let endo = self.r_endo(theta);
        (endo * endo + (ed + wall).powi(2) - ed * ed).sqrt()
    }

    /// Closed polygon of `radius(θ)`, on the 0.5-pixel grid like the expert
    /// contours, about two points per pixel of perimeter, without repeats.
    pub(crate) fn contour(&self, radius: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        let perimeter = TAU * radius(0.0).max(1.0);
        let n = (perimeter * 2.0).ceil().max(16.0) as usize;
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(n);
        for k in 0..n {
            let theta = TAU * k as f64 / n as f64;
            let r = radius(theta);
            let snap = |v: f64| (v * 2.0).round() / 2.0;
            let p = (snap(self.center.0 + r * theta.cos()), snap(self.center.1 + r * theta.sin()));
            if points.last() != Some(&p) {
                points.push(p);
            }
        }
        while points.len() > 1 && points.first() == points.last() {
            points.pop();
        }
        points
    }

    /// Pixel bounding box (x0, y0, x1, y1) that holds the heart and its fat.
    fn bounds(&self, margin: f64) -> (usize, usize, usize, usize) {
        let reach = self.r_endo_ed * 1.3 + self.wall_ed * 1.6 + margin;
        let (rx, ry) = self.rv_center;
        let rv = self.rv_radius * 1.3 + margin;
        let lo_x = (self.center.0 - reach).min(rx - rv).floor().max(0.0) as usize;
        let lo_y = (self.center.1 - reach).min(ry - rv).floor().max(0.0) as usize;
        let hi_x = ((self.center.0 + reach).max(rx + rv).ceil().max(0.0) as usize).min(SIZE);
        let hi_y = ((self.center.1 + reach).max(ry + rv).ceil().max(0.0) as usize).min(SIZE);
        (lo_x, lo_y, hi_x, hi_y)
    }
}

/// Partial-volume weight of a pixel whose centre lies `d` pixels inside an
/// edge (negative: outside): the covered fraction of a 1-pixel ramp.
fn coverage(d: f64) -> f64 {
    (0.5 + d).clamp(0.0, 1.0)
}

/// Signed distance (px, positive inside) of (x, y) to an ellipse with
/// semi-axes `a` (along the direction whose (sin, cos) is given) and `b`,
/// measured along the centre ray.
fn ellipse_depth(x: f64, y: f64, center: (f64, f64), a: f64, b: f64, (s, c): (f64, f64)) -> f64 {
    let (dx, dy) = (x - center.0, y - center.1);
    let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
    let rho = (u * u + v * v).sqrt();
    if rho < 1e-9 {
        return a.min(b);
    }
    let edge = 1.0 / ((u / rho / a).powi(2) + (v / rho / b).powi(2)).sqrt();
    edge - rho
}

/// An ellipse painted with one intensity.
struct Blob {
    center: (f64, f64),
    a: f64,
    b: f64,
    angle: f64,
    value: f64,
}

impl Blob {
    fn paint(&self, image: &mut [f64]) {
        let reach = self.a.max(self.b) + 2.0;
        let x0 = (self.center.0 - reach).floor().max(0.0) as usize;
        let y0 = (self.center.1 - reach).floor().max(0.0) as usize;
        let x1 = ((self.center.0 + reach).ceil().max(0.0) as usize).min(SIZE);
        let y1 = ((self.center.1 + reach).ceil().max(0.0) as usize).min(SIZE);
        let direction = self.angle.sin_cos();
        for y in y0..y1 {
            for x in x0..x1 {
                let m = coverage(ellipse_depth(
                    x as f64,
                    y as f64,
                    self.center,
                    self.a,
                    self.b,
                    direction,
                ));
                if m > 0.0 {
                    let p = &mut image[y * SIZE + x];
                    *p += (self.value - *p) * m;
                }
            }
        }
    }
}

impl Patient {
    /// Everything but the heart at one slice (static over the cycle):
    /// air, body with subcutaneous fat, lungs, liver, spine, aorta.
    pub(crate) fn background(&self, slice: usize) -> Vec<f64> {
        let z = self.z(slice);
        let mut image = vec![0.0; SIZE * SIZE];
        let (ba, bb) = (self.px(self.body_axes_mm.0), self.px(self.body_axes_mm.1));
        let fat = self.px(self.fat_mm);
        let bc = self.body_center;
        let tilt = self.heart_angle * 0.3;
        let heart = self.heart(slice, 0).center;
        let spine = (bc.0 + self.px(6.0), bc.1 + bb - self.px(42.0));
        // Organs are painted into the body interior (muscle/mediastinum),
        // which is then blended into the fat-lined body outline.
        let mut interior = vec![Tissue::MUSCLE; SIZE * SIZE];
        let mut blobs = vec![
            // Lungs either side of the heart, smaller towards the apex (the
            // diaphragm rises into the slice).
            Blob {
                center: (heart.0 - self.px(78.0), heart.1 + self.px(8.0)),
                a: self.px(50.0 - 16.0 * z),
                b: self.px(72.0 - 20.0 * z),
                angle: 0.3,
                value: Tissue::LUNG,
            },
            Blob {
                center: (heart.0 + self.px(62.0), heart.1 + self.px(14.0)),
                a: self.px(46.0 - 18.0 * z),
                b: self.px(70.0 - 22.0 * z),
                angle: -0.35,
                value: Tissue::LUNG,
            },
            // Liver dome, entering from below-left, larger at the apex.
            Blob {
                center: (heart.0 - self.px(95.0), heart.1 + self.px(105.0 - 40.0 * z)),
                a: self.px(80.0),
                b: self.px(45.0 + 15.0 * z),
                angle: -0.45,
                value: Tissue::LIVER,
            },
            // Vertebral body (marrow with a dark cortex) and descending aorta.
            Blob {
                center: spine,
                a: self.px(20.0),
                b: self.px(17.0),
                angle: 0.0,
                value: Tissue::CORTEX,
            },
            Blob {
                center: spine,
                a: self.px(17.0),
                b: self.px(14.0),
                angle: 0.0,
                value: Tissue::BONE,
            },
            Blob {
                center: (spine.0 + self.px(24.0), spine.1 - self.px(24.0)),
                a: self.px(11.5),
                b: self.px(11.0),
                angle: 0.0,
                value: 0.95 * self.rv_intensity,
            },
        ];
        // Pulmonary vessels: small bright dots in the lungs, fixed per patient.
        for k in 0..14u32 {
            let side = if k % 2 == 0 { -1.0 } else { 1.0 };
            let (u, v) = (hash_unit(self.texture_seed, k, 1), hash_unit(self.texture_seed, k, 2));
            blobs.push(Blob {
                center: (
                    heart.0 + side * self.px(45.0 + 45.0 * u),
                    heart.1 + self.px(-40.0 + 90.0 * v),
                ),
                a: self.px(1.5 + 2.0 * hash_unit(self.texture_seed, k, 3)),
                b: self.px(1.5 + 1.5 * hash_unit(self.texture_seed, k, 4)),
                angle: 0.0,
                value: 0.55,
            });
        }
        for blob in &blobs {
            blob.paint(&mut interior);
        }
        Blob { center: bc, a: ba, b: bb, angle: tilt, value: self.fat_intensity }.paint(&mut image);
        let (inner_a, inner_b) = (ba - fat, bb - fat * 0.7);
        let direction = tilt.sin_cos();
        for (i, (p, organ)) in image.iter_mut().zip(&interior).enumerate() {
            let (x, y) = ((i % SIZE) as f64, (i / SIZE) as f64);
            *p += (organ - *p) * coverage(ellipse_depth(x, y, bc, inner_a, inner_b, direction));
        }
        // Low-frequency tissue texture (fibre orientation, flow, coil phase).
        // Each plane wave sin(kx·x + ky·y + φ) = sin(u)cos(v) + cos(u)sin(v)
        // with u = kx·x + φ, v = ky·y: tabulated per column and per row.
        let waves: Vec<[Vec<(f64, f64)>; 2]> = (0..4u32)
            .map(|k| {
                let dir = hash_unit(self.texture_seed, k, 5) * TAU;
                let freq = 0.03 + 0.07 * hash_unit(self.texture_seed, k, 6);
                let phase = hash_unit(self.texture_seed, k, 7) * TAU;
                let columns =
                    (0..SIZE).map(|x| (freq * dir.cos() * x as f64 + phase).sin_cos()).collect();
                let rows = (0..SIZE).map(|y| (freq * dir.sin() * y as f64).sin_cos()).collect();
                [columns, rows]
            })
            .collect();
        for (i, p) in image.iter_mut().enumerate() {
            let (x, y) = (i % SIZE, i / SIZE);
            let texture: f64 = waves
                .iter()
                .map(|[cols, rows]| cols[x].0 * rows[y].1 + cols[x].1 * rows[y].0)
                .sum();
            *p *= 1.0 + 0.035 * texture;
        }
        image
    }

    /// The heart painted over `image`: pericardial fat, RV (wall + blood),
    /// LV myocardium, LV blood pool, papillary muscles.
    pub(crate) fn paint_heart(&self, heart: &Heart, image: &mut [f64]) {
        let fat_offset = heart.r_endo_ed + heart.wall_ed;
        for side in [-1.25, 1.3] {
            let angle = heart.rv_angle + side;
            Blob {
                center: (
                    heart.center.0 + (fat_offset + 1.5) * angle.cos(),
                    heart.center.1 + (fat_offset + 1.5) * angle.sin(),
                ),
                a: self.px(7.0),
                b: self.px(3.5),
                angle: angle + PI / 2.0,
                value: self.fat_intensity * 0.9,
            }
            .paint(image);
        }
        if heart.rv_radius > 1.0 {
            let (a, b) = (0.85 * heart.rv_radius, 1.3 * heart.rv_radius);
            let rv_wall = self.px(3.0);
            Blob {
                center: heart.rv_center,
                a: a + rv_wall,
                b: b + rv_wall,
                angle: heart.rv_angle,
                value: Tissue::MYOCARDIUM,
            }
            .paint(image);
            Blob { center: heart.rv_center, a, b, angle: heart.rv_angle, value: self.rv_intensity }
                .paint(image);
        }
        let (x0, y0, x1, y1) = heart.bounds(3.0);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f64 - heart.center.0, y as f64 - heart.center.1);
                let rho = (dx * dx + dy * dy).sqrt();
                let theta = dy.atan2(dx);
                let p = &mut image[y * SIZE + x];
                let epi = coverage(heart.r_epi(theta) - rho);
                *p += (Tissue::MYOCARDIUM - *p) * epi;
                // Slow-flow shading: the pool is a little darker near the wall.
                let r_endo = heart.r_endo(theta);
                let blood_value = 1.0 - 0.06 * (rho / r_endo).clamp(0.0, 1.0).powi(2);
                *p += (blood_value - *p) * coverage(r_endo - rho);
            }
        }
        for &(angle, radius) in &heart.papillary {
            let d = heart.r_endo(angle) - 0.9 * radius;
            Blob {
                center: (heart.center.0 + d * angle.cos(), heart.center.1 + d * angle.sin()),
                a: radius,
                b: radius * 0.85,
                angle,
                value: Tissue::MYOCARDIUM * 1.1,
            }
            .paint(image);
        }
    }

    /// The multiplicative receive-coil field: a gentle gradient plus the
    /// bump of a surface coil element.
    pub(crate) fn coil_field(&self) -> Vec<f64> {
        let (gx, gy) = self.bias_gradient;
        let (cx, cy, strength, width) = self.coil;
        (0..SIZE * SIZE)
            .map(|i| {
                let (x, y) = ((i % SIZE) as f64, (i / SIZE) as f64);
                let bump = (-((x - cx).powi(2) + (y - cy).powi(2)) / (2.0 * width * width)).exp();
                (1.0 + gx * (x - 128.0) / 128.0 + gy * (y - 128.0) / 128.0 + strength * bump)
                    .clamp(0.5, 1.8)
            })
            .collect()
    }

    /// Point-spread blur, coil field, Rician noise, scaling to raw values.
    pub(crate) fn acquire(
        &self,
        mut image: Vec<f64>,
        coil_field: &[f64],
        rng: &mut ChaCha8Rng,
    ) -> Vec<u16> {
        gaussian_blur(&mut image, 0.65);
        let sigma = self.noise;
        image
            .iter()
            .zip(coil_field)
            .map(|(&v, &bias)| {
                let s = v * bias;
                let (n1, n2) = (approx_gaussian(rng), approx_gaussian(rng));
                let magnitude = ((s + sigma * n1).powi(2) + (sigma * n2).powi(2)).sqrt();
                (magnitude * self.blood_raw).round().clamp(0.0, MAX_RAW) as u16
            })
            .collect()
    }

    /// A coronal scout image (the unrelated series in the study folder).
    pub(crate) fn localizer(&self, index: usize) -> Vec<f64> {
        let mut image = vec![0.0; SIZE * SIZE];
        let c = (128.0 + 6.0 * index as f64, 128.0);
        let blobs = [
            Blob {
                center: c,
                a: self.px(150.0),
                b: self.px(170.0),
                angle: 0.0,
                value: self.fat_intensity,
            },
            Blob {
                center: c,
                a: self.px(138.0),
                b: self.px(165.0),
                angle: 0.0,
                value: Tissue::MUSCLE,
            },
            Blob {
                center: (c.0 - self.px(70.0), c.1 - self.px(40.0)),
                a: self.px(55.0),
                b: self.px(110.0),
                angle: 0.05,
                value: Tissue::LUNG,
            },
            Blob {
                center: (c.0 + self.px(70.0), c.1 - self.px(40.0)),
                a: self.px(55.0),
                b: self.px(110.0),
                angle: -0.05,
                value: Tissue::LUNG,
            },
            Blob {
                center: (c.0 - self.px(40.0), c.1 + self.px(110.0)),
                a: self.px(100.0),
                b: self.px(50.0),
                angle: 0.2,
                value: Tissue::LIVER,
            },
            Blob {
                center: (c.0 + self.px(20.0), c.1 + self.px(15.0)),
                a: self.px(55.0),
                b: self.px(45.0),
                angle: 0.6,
                value: 0.9,
            },
        ];
        for blob in &blobs {
            blob.paint(&mut image);
        }
        image
    }
}

/// A standard normal sample, approximately: the Irwin–Hall sum of four
/// 16-bit uniforms from one draw (variance matched). Exact Box–Muller costs a
/// log, a root and two trig calls per pixel, which dominated generation time.
fn approx_gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let bits = rng.next_u64();
    let sum: f64 = (0..4).map(|k| ((bits >> (16 * k)) & 0xFFFF) as f64).sum::<f64>() / 65536.0;
    // Sum of 4 U(0,1): mean 2, variance 4/12.
    (sum - 2.0) * 3f64.sqrt()
}

/// Separable Gaussian blur with clamped edges.
fn gaussian_blur(image: &mut [f64], sigma: f64) {
    let radius = (3.0 * sigma).ceil() as usize;
    let kernel: Vec<f64> = (0..=2 * radius)
        .map(|k| (-((k as f64 - radius as f64).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = kernel.iter().sum();
    let kernel: Vec<f64> = kernel.iter().map(|k| k / total).collect();
    let clamp = |i: usize| i.saturating_sub(radius).min(SIZE - 1);
    let mut tmp = vec![0.0; image.len()];
    for y in 0..SIZE {
        let row = &image[y * SIZE..(y + 1) * SIZE];
        for x in 0..SIZE {
            let mut acc = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                acc += w * row[clamp(x + k)];
            }
            tmp[y * SIZE + x] = acc;
        }
    }
    for y in 0..SIZE {
        let out = &mut image[y * SIZE..(y + 1) * SIZE];
        out.fill(0.0);
        for (k, w) in kernel.iter().enumerate() {
            let src = &tmp[clamp(y + k) * SIZE..][..SIZE];
            for (o, s) in out.iter_mut().zip(src) {
                *o += w * s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn patient(group: Group, seed: u64) -> Patient {
        Patient::draw(group, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn systole_shrinks_the_cavity_and_thickens_the_wall() {
        let p = patient(Group::Normal, 3);
        let (ed, es) = (p.heart(2, 0), p.heart(2, p.es_phase));
        for theta in [0.0, 1.0, 2.5, 4.0] {
            assert!(es.r_endo(theta) < 0.75 * ed.r_endo(theta));
            let wall = |h: &Heart| h.r_epi(theta) - h.r_endo(theta);
            assert!(wall(&es) > 1.2 * wall(&ed));
        }
        assert_eq!(p.contraction(0), 0.0);
        assert_eq!(p.contraction(p.es_phase), 1.0);
    }

    #[test]
    fn groups_differ_the_way_the_pathologies_do() {
        let mean_over = |group| {
            let hearts: Vec<(f64, f64)> = (0..20)
                .map(|s| {
                    let p = patient(group, s);
                    let h = p.heart(0, 0);
                    ((h.r_endo(0.0)) * p.spacing, (h.r_epi(0.0) - h.r_endo(0.0)) * p.spacing)
                })
                .collect();
            let n = hearts.len() as f64;
            (
                hearts.iter().map(|h| h.0).sum::<f64>() / n,
                hearts.iter().map(|h| h.1).sum::<f64>() / n,
            )
        };
        let (normal_r, normal_wall) = mean_over(Group::Normal);
        let (hyp_r, hyp_wall) = mean_over(Group::Hypertrophy);
        let (hf_r, _) = mean_over(Group::HeartFailure);
        assert!(hyp_wall > 1.5 * normal_wall, "{hyp_wall} vs {normal_wall}");
        assert!(hf_r > 1.15 * normal_r && hyp_r < normal_r);
    }

    #[test]
    fn contour_is_on_the_half_pixel_grid_and_open() {
        let h = patient(Group::HeartFailure, 1).heart(0, 0);
        let c = h.contour(|t| h.r_endo(t));
        assert!(c.len() > 100);
        assert!(c.iter().all(|&(x, y)| (x * 2.0).fract() == 0.0 && (y * 2.0).fract() == 0.0));
        assert_ne!(c.first(), c.last());
        assert!(c.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn papillary_muscles_lie_inside_the_endocardium() {
        let p = patient(Group::Normal, 9);
        let h = p.heart(3, 0);
        assert!(!h.papillary.is_empty());
        for &(angle, radius) in &h.papillary {
            let d = h.r_endo(angle) - 0.9 * radius;
            assert!(d + radius <= h.r_endo(angle) + 0.2 * radius);
            assert!(d - radius > 0.0);
        }
    }

    #[test]
    fn blur_keeps_a_constant_image() {
        let mut image = vec![0.7; SIZE * SIZE];
        gaussian_blur(&mut image, 0.65);
        assert!(image.iter().all(|v| (v - 0.7).abs() < 1e-12));
    }
}
