//! Polygon → label mask, the way the DIGITS Sunnybrook plugin makes them.
//!
//! The reference loaders do `np.loadtxt(f).astype(int)` (truncation toward
//! zero) and then `cv2.fillPoly(mask, [pts], value)` with the default
//! `lineType=8`, `shift=0`. This module reproduces that fill exactly, so a
//! model trained here sees the same boundary pixels as one trained in DIGITS:
//!
//! 1. Outline: every edge (including the closing one) is drawn as an
//!    8-connected Bresenham line between its integer end points, walked from
//!    the left end point, after Cohen–Sutherland-style clipping to the image
//!    (OpenCV's `clipLine`, with its truncating integer arithmetic). So the
//!    boundary pixels always belong to the mask.
//! 2. Interior: a scanline fill over the non-horizontal edges. An edge from
//!    row `y0` to row `y1` is active on rows `y0 <= y < y1`; its x is kept in
//!    16.16 fixed point, starting at the upper end point and stepping by
//!    `dx = Δx·65536 / Δy` (integer division, truncating toward zero) per
//!    row. On each row the active edges are sorted by x and filled in pairs
//!    (even–odd rule) from `ceil(x_left)` to `floor(x_right)`, clipped to the
//!    image. Horizontal edges only contribute their outline.
//! 3. For an edge with an end point outside the image, x and dx come from the
//!    clipped end points (as in OpenCV ≥ 4.5), extrapolated back to the
//!    unclipped upper row.
//!
//! Self-intersecting polygons (bow-ties, figure-8s) are filled by the
//! even–odd rule of step 2 plus the outline of step 1.

/// A vertex in pixel coordinates: `x` = column, `y` = row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vertex {
    pub x: i64,
    pub y: i64,
}

/// Bits of fixed-point precision of edge x positions (OpenCV's `XY_SHIFT`).
const FRAC_BITS: u32 = 16;

/// A `width`×`height` u8 label plane, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelPlane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl LabelPlane {
    pub fn new(width: usize, height: usize) -> Self {
        LabelPlane { width, height, data: vec![0; width * height] }
    }

    fn contains(&self, x: i64, y: i64) -> bool {
        x >= 0 && y >= 0 && (x as u64) < self.width as u64 && (y as u64) < self.height as u64
    }

    fn set(&mut self, x: i64, y: i64, value: u8) {
        if self.contains(x, y) {
            self.data[y as usize * self.width + x as usize] = value;
        }
    }

    /// Fills `polygon` (implicitly closed) with `value`, exactly like
    /// `cv2.fillPoly(plane, [polygon], value)`; see the module docs.
    pub fn fill_polygon(&mut self, polygon: &[Vertex], value: u8) {
        if polygon.is_empty() || self.width == 0 || self.height == 0 {
            return;
        }
        let mut edges = Vec::with_capacity(polygon.len());
        let mut prev = polygon[polygon.len() - 1];
        for &cur in polygon {
            self.draw_line(prev, cur, value);
            if let Some(edge) = self.scan_edge(prev, cur) {
                edges.push(edge);
            }
            prev = cur;
        }
        self.fill_edges(&mut edges, value);
    }

    /// The fixed-point scan edge of the segment `p0 → p1`, or `None` for a
    /// horizontal segment.
    fn scan_edge(&self, p0: Vertex, p1: Vertex) -> Option<ScanEdge> {
        if p0.y == p1.y {
            return None;
        }
        let (mut c0, mut c1) = (p0, p1);
        if !self.contains(p0.x, p0.y) || !self.contains(p1.x, p1.y) {
            let (mut t0, mut t1) = (p0, p1);
            clip_segment(self.width as i64, self.height as i64, &mut t0, &mut t1);
            // The clipped x is always used; the clipped rows only when the
            // clipped segment is not horizontal (else dy would be zero).
            c0.x = t0.x;
            c1.x = t1.x;
            if t0.y != t1.y {
                c0.y = t0.y;
                c1.y = t1.y;
            }
        }
        let dx = ((c1.x - c0.x) << FRAC_BITS) / (c1.y - c0.y);
        let (upper, upper_clipped, lower) = if p0.y < p1.y { (p0, c0, p1) } else { (p1, c1, p0) };
        Some(ScanEdge {
            y0: upper.y,
            y1: lower.y,
            x: (upper_clipped.x << FRAC_BITS) + (upper.y - upper_clipped.y) * dx,
            dx,
        })
    }

    fn fill_edges(&mut self, edges: &mut [ScanEdge], value: u8) {
        if edges.len() < 2 {
            return;
        }
        let first_row = edges.iter().map(|e| e.y0).min().unwrap_or(0);
        let end_row = edges.iter().map(|e| e.y1).max().unwrap_or(0).min(self.height as i64);
        let mut active: Vec<i64> = Vec::with_capacity(edges.len());
        for y in first_row.max(0)..end_row {
            active.clear();
            active.extend(
                edges.iter().filter(|e| e.y0 <= y && y < e.y1).map(|e| e.x + (y - e.y0) * e.dx),
            );
            active.sort_unstable();
            for pair in active.chunks_exact(2) {
                let left = (pair[0] + (1 << FRAC_BITS) - 1) >> FRAC_BITS;
                let right = pair[1] >> FRAC_BITS;
                if left < self.width as i64 && right >= 0 {
                    let row = y as usize * self.width;
                    let (from, to) =
                        (left.max(0) as usize, right.min(self.width as i64 - 1) as usize);
                    if from <= to {
                        self.data[row + from..=row + to].fill(value);
                    }
                }
            }
        }
    }

    /// An 8-connected line `p0 → p1`, clipped to the plane, walked from its
    /// left end point (OpenCV `LineIterator` with `leftToRight`).
    fn draw_line(&mut self, p0: Vertex, p1: Vertex, value: u8) {
        let (mut a, mut b) = (p0, p1);
        if (!self.contains(a.x, a.y) || !self.contains(b.x, b.y))
            && !clip_segment(self.width as i64, self.height as i64, &mut a, &mut b)
        {
            return;
        }
        let (start, mut dx, mut dy) =
            if b.x < a.x { (b, a.x - b.x, a.y - b.y) } else { (a, b.x - a.x, b.y - a.y) };
        let (mut step_major, mut step_minor) = ((1i64, 0i64), (0i64, 1i64));
        if dy < 0 {
            dy = -dy;
            step_minor.1 = -1;
        }
        if dy > dx {
            std::mem::swap(&mut dx, &mut dy);
            // Major axis is y: step y every pixel, x when the error says so.
            step_major = (0, step_minor.1);
            step_minor = (1, 0);
        }
        let mut err = dx - 2 * dy;
        let (mut x, mut y) = (start.x, start.y);
        for _ in 0..=dx {
            self.set(x, y, value);
            let minor = err < 0;
            err += -2 * dy + if minor { 2 * dx } else { 0 };
            x += step_major.0 + if minor { step_minor.0 } else { 0 };
            y += step_major.1 + if minor { step_minor.1 } else { 0 };
        }
    }
}

/// One non-horizontal polygon edge for the scanline fill.
#[derive(Clone, Copy, Debug)]
struct ScanEdge {
    /// First row the edge is active on.
    y0: i64,
    /// Row the edge stops being active on (exclusive).
    y1: i64,
    /// x at row `y0`, 16.16 fixed point.
    x: i64,
    /// x step per row, 16.16 fixed point.
    dx: i64,
}

/// Clips the segment to `[0,width-1]×[0,height-1]` in place with OpenCV's
/// `clipLine` arithmetic (rows first, then columns; each intersection
/// computed in f64 and truncated). Returns whether the result lies inside.
/// Like OpenCV, the end points may have been moved even when it returns
/// false; the polygon edge setup relies on that.
fn clip_segment(width: i64, height: i64, p1: &mut Vertex, p2: &mut Vertex) -> bool {
    let (right, bottom) = (width - 1, height - 1);
    let outcode = |p: &Vertex| -> u8 {
        u8::from(p.x < 0)
            | u8::from(p.x > right) << 1
            | u8::from(p.y < 0) << 2
            | u8::from(p.y > bottom) << 3
    };
    let x_code = |p: &Vertex| -> u8 { u8::from(p.x < 0) | u8::from(p.x > right) << 1 };
    let (mut c1, mut c2) = (outcode(p1), outcode(p2));
    if c1 & c2 == 0 && c1 | c2 != 0 {
        let along = |num: i64, span: i64, den: i64| -> i64 {
            (num as f64 * span as f64 / den as f64) as i64
        };
        if c1 & 12 != 0 {
            let a = if c1 < 8 { 0 } else { bottom };
            p1.x += along(a - p1.y, p2.x - p1.x, p2.y - p1.y);
            p1.y = a;
            c1 = x_code(p1);
        }
        if c2 & 12 != 0 {
            let a = if c2 < 8 { 0 } else { bottom };
            p2.x += along(a - p2.y, p2.x - p1.x, p2.y - p1.y);
            p2.y = a;
            c2 = x_code(p2);
        }
        if c1 & c2 == 0 && c1 | c2 != 0 {
            if c1 != 0 {
                let a = if c1 == 1 { 0 } else { right };
                p1.y += along(a - p1.x, p2.y - p1.y, p2.x - p1.x);
                p1.x = a;
                c1 = 0;
            }
            if c2 != 0 {
                let a = if c2 == 1 { 0 } else { right };
                p2.y += along(a - p2.x, p2.y - p1.y, p2.x - p1.x);
                p2.x = a;
                c2 = 0;
            }
        }
    }
    c1 | c2 == 0
}

/// Coordinates are clamped to ±2^24 so the 16.16 fixed-point edge math can
/// never overflow i64; no image comes near that size, so clamping only
/// changes where an absurd far-away vertex sits, not which pixels are set
/// in practice.
const COORD_LIMIT: f64 = (1u64 << 24) as f64;

/// `astype(int)` of contour coordinates: truncation toward zero (then the
/// clamp above).
pub fn truncate_points(points: &[[f64; 2]]) -> Vec<Vertex> {
    let int = |v: f64| v.trunc().clamp(-COORD_LIMIT, COORD_LIMIT) as i64;
    points.iter().map(|p| Vertex { x: int(p[0]), y: int(p[1]) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a hand-drawn grid: `#` = 1, `.` = 0, one string per row.
    fn grid(rows: &[&str]) -> LabelPlane {
        let height = rows.len();
        let width = rows[0].len();
        let data = rows.iter().flat_map(|r| r.bytes().map(|b| u8::from(b == b'#'))).collect();
        LabelPlane { width, height, data }
    }

    fn show(plane: &LabelPlane) -> String {
        plane
            .data
            .chunks(plane.width)
            .map(|r| r.iter().map(|&v| if v == 0 { '.' } else { '#' }).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn fill(width: usize, height: usize, pts: &[(i64, i64)]) -> LabelPlane {
        let mut plane = LabelPlane::new(width, height);
        let poly: Vec<Vertex> = pts.iter().map(|&(x, y)| Vertex { x, y }).collect();
        plane.fill_polygon(&poly, 1);
        plane
    }

    fn assert_mask(got: &LabelPlane, want: &[&str]) {
        assert_eq!(
            show(got),
            show(&grid(want)),
            "\n got:\n{}\nwant:\n{}",
            show(got),
            show(&grid(want))
        );
    }

    #[test]
    fn square_includes_its_boundary() {
        let m = fill(8, 8, &[(2, 1), (5, 1), (5, 4), (2, 4)]);
        assert_mask(
            &m,
            &[
                "........", "..####..", "..####..", "..####..", "..####..", "........", "........",
                "........",
            ],
        );
    }

    #[test]
    fn right_triangle() {
        // Hypotenuse (0,0)-(6,6) is a 45° line; the fill follows it exactly.
        let m = fill(8, 8, &[(0, 0), (6, 6), (0, 6)]);
        assert_mask(
            &m,
            &[
                "#.......", "##......", "###.....", "####....", "#####...", "######..", "#######.",
                "........",
            ],
        );
    }

    #[test]
    fn shallow_triangle_uses_ceil_floor_of_fixed_point_edges() {
        // Edge (0,0)->(7,3): dx = 7/3 px per row. Scanline rows 0..2 fill
        // from the left edge x=0 to floor(7/3·y); the outline adds the
        // Bresenham pixels of each edge.
        let m = fill(8, 4, &[(0, 0), (7, 3), (0, 3)]);
        assert_mask(&m, &["##......", "####....", "######..", "########"]);
    }

    #[test]
    fn concave_u_shape_keeps_its_notch_empty() {
        let m = fill(8, 8, &[(1, 1), (2, 1), (2, 5), (5, 5), (5, 1), (6, 1), (6, 6), (1, 6)]);
        assert_mask(
            &m,
            &[
                "........", ".##..##.", ".##..##.", ".##..##.", ".##..##.", ".######.", ".######.",
                "........",
            ],
        );
    }

    #[test]
    fn concave_l_shape() {
        let m = fill(8, 8, &[(0, 0), (2, 0), (2, 4), (6, 4), (6, 6), (0, 6)]);
        assert_mask(
            &m,
            &[
                "###.....", "###.....", "###.....", "###.....", "#######.", "#######.", "#######.",
                "........",
            ],
        );
    }

    #[test]
    fn bow_tie_fills_both_lobes_by_even_odd() {
        // (0,0)-(6,6)-(6,0)-(0,6): the diagonals cross at (3,3); the left and
        // right triangles (closed by the vertical sides) are inside.
        let m = fill(7, 7, &[(0, 0), (6, 6), (6, 0), (0, 6)]);
        assert_mask(
            &m,
            &["#.....#", "##...##", "###.###", "#######", "###.###", "##...##", "#.....#"],
        );
    }

    #[test]
    fn figure_eight_touching_at_one_vertex() {
        // Two squares sharing the vertex (3,3), drawn as one closed path.
        let m = fill(8, 8, &[(0, 0), (3, 0), (3, 3), (6, 3), (6, 6), (3, 6), (3, 3), (0, 3)]);
        assert_mask(
            &m,
            &[
                "####....", "####....", "####....", "#######.", "...####.", "...####.", "...####.",
                "........",
            ],
        );
    }

    #[test]
    fn collinear_points_give_a_line() {
        let m = fill(8, 4, &[(1, 1), (4, 1), (6, 1)]);
        assert_mask(&m, &["........", ".######.", "........", "........"]);
        let diag = fill(5, 5, &[(0, 0), (2, 2), (4, 4)]);
        assert_mask(&diag, &["#....", ".#...", "..#..", "...#.", "....#"]);
    }

    #[test]
    fn one_pixel_polygon() {
        let m = fill(4, 4, &[(2, 1), (2, 1), (2, 1)]);
        assert_mask(&m, &["....", "..#.", "....", "...."]);
    }

    #[test]
    fn polygon_on_the_image_border() {
        let m = fill(5, 5, &[(0, 0), (4, 0), (4, 4), (0, 4)]);
        assert_mask(&m, &["#####", "#####", "#####", "#####", "#####"]);
    }

    #[test]
    fn polygon_partly_outside_is_clipped() {
        // Square from (-2,-2) to (3,3) on a 6x6 image: only the inside part
        // remains, rows/cols 0..=3.
        let m = fill(6, 6, &[(-2, -2), (3, -2), (3, 3), (-2, 3)]);
        assert_mask(&m, &["####..", "####..", "####..", "####..", "......", "......"]);
        // And one hanging over the right/bottom border.
        let m = fill(6, 6, &[(3, 3), (9, 3), (9, 9), (3, 9)]);
        assert_mask(&m, &["......", "......", "......", "...###", "...###", "...###"]);
    }

    #[test]
    fn polygon_entirely_outside_leaves_the_plane_empty() {
        let m = fill(4, 4, &[(10, 10), (12, 10), (12, 12)]);
        assert!(m.data.iter().all(|&v| v == 0));
        let m = fill(4, 4, &[(-5, 0), (-2, 0), (-2, 3)]);
        assert!(m.data.iter().all(|&v| v == 0));
    }

    #[test]
    fn steep_line_walks_the_major_axis() {
        // Edge (1,0)->(2,5): Bresenham steps x once, after the third row
        // (error 3, 1, -1 → minor step); the scanline part adds nothing.
        let m = fill(4, 6, &[(1, 0), (2, 5), (1, 5)]);
        assert_mask(&m, &[".#..", ".#..", ".#..", ".##.", ".##.", ".##."]);
    }

    #[test]
    fn later_fill_overwrites_earlier_value() {
        let mut plane = LabelPlane::new(6, 6);
        let outer: Vec<Vertex> =
            [(0, 0), (5, 0), (5, 5), (0, 5)].iter().map(|&(x, y)| Vertex { x, y }).collect();
        let inner: Vec<Vertex> =
            [(2, 2), (3, 2), (3, 3), (2, 3)].iter().map(|&(x, y)| Vertex { x, y }).collect();
        plane.fill_polygon(&outer, 2);
        plane.fill_polygon(&inner, 1);
        assert_eq!(plane.data.iter().filter(|&&v| v == 1).count(), 4);
        assert_eq!(plane.data.iter().filter(|&&v| v == 2).count(), 32);
    }

    #[test]
    fn far_away_vertices_neither_overflow_nor_panic() {
        let mut plane = LabelPlane::new(8, 8);
        let poly = truncate_points(&[
            [-1e300, 2.0],
            [1e300, 2.0],
            [1e300, 5.0],
            [-1e300, 5.0],
            [3.0, 1e18],
        ]);
        plane.fill_polygon(&poly, 1);
        // Rows 2..=5 are crossed by the huge band: fully set.
        assert!(plane.data[2 * 8..6 * 8].iter().all(|&v| v == 1));
    }

    proptest::proptest! {
        /// Any polygon, inside or not: no panic, and every vertex that lies
        /// in the image is set (the outline passes through it).
        #[test]
        fn vertices_in_the_image_are_always_set(pts in proptest::collection::vec((-40i64..80, -40i64..70), 1..12)) {
            let mut plane = LabelPlane::new(32, 24);
            let poly: Vec<Vertex> = pts.iter().map(|&(x, y)| Vertex { x, y }).collect();
            plane.fill_polygon(&poly, 1);
            for v in &poly {
                if plane.contains(v.x, v.y) {
                    proptest::prop_assert_eq!(plane.data[v.y as usize * 32 + v.x as usize], 1);
                }
            }
        }
    }

    #[test]
    fn truncation_is_toward_zero() {
        let v = truncate_points(&[[109.5, 146.0], [-0.5, 2.99], [-1.5, 0.0]]);
        assert_eq!(
            v,
            vec![Vertex { x: 109, y: 146 }, Vertex { x: 0, y: 2 }, Vertex { x: -1, y: 0 }]
        );
    }
}
