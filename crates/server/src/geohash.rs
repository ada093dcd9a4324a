//! Geohash math behind the geo commands, with Redis 7.0's exact numbers so that scores,
//! decoded positions, search areas and distances match a real server bit for bit.
//!
//! A position is stored as a sorted-set score: a 52-bit geohash, 26 bits of latitude and 26 of
//! longitude interleaved (latitude in the even bits), over longitude -180..180 and latitude
//! -85.05112878..85.05112878 (the Web-Mercator limits; poles cannot be indexed). A search
//! covers its shape with a cell of a coarser step and its 8 neighbours; every cell is one score
//! range of the sorted set, and each point found is checked against the exact shape.

use std::f64::consts::PI;

/// Bits per coordinate in a stored score (26 × 2 = 52 bits, exact in an f64).
pub const STEP_MAX: u8 = 26;
pub const LON_MIN: f64 = -180.0;
pub const LON_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
/// The earth radius Redis uses for every distance (metres).
pub const EARTH_RADIUS_M: f64 = 6372797.560856;
/// Half the Web-Mercator world width (metres): the radius a step-1 cell roughly covers.
const MERCATOR_MAX: f64 = 20037726.37;
/// Degrees to radians, as Redis computes it (PI / 180).
const D_R: f64 = PI / 180.0;

/// A coordinate interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

const LON_RANGE: Range = Range {
    min: LON_MIN,
    max: LON_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};
/// The latitude range of standard geohash strings (GEOHASH's output).
const STD_LAT_RANGE: Range = Range {
    min: -90.0,
    max: 90.0,
};

/// A geohash cell: `step` bits per coordinate, interleaved in the low `2 * step` bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashBits {
    pub bits: u64,
    pub step: u8,
}

impl HashBits {
    /// The marker of a neighbour left out of a search (Redis's zeroed hash).
    pub const NONE: HashBits = HashBits { bits: 0, step: 0 };

    pub fn is_none(self) -> bool {
        self == HashBits::NONE
    }

    /// The cell's bits left-aligned to 52 bits: the lowest score inside the cell.
    pub fn align52(self) -> u64 {
        self.bits << (52 - 2 * u32::from(self.step))
    }

    /// The scores of the points inside the cell: `min..max` (max excluded).
    pub fn score_range(self) -> (u64, u64) {
        let next = HashBits {
            bits: self.bits + 1,
            step: self.step,
        };
        (self.align52(), next.align52())
    }
}

/// The rectangle a cell covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    pub lon: Range,
    pub lat: Range,
}

/// Spreads the 32 bits of `v` to the even bits of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bits of `v` into a u32 (the inverse of [`spread`]).
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// True if the position is inside the indexable limits.
pub fn valid_lon_lat(lon: f64, lat: f64) -> bool {
    (LON_MIN..=LON_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

/// Encodes a position into a cell of `step` bits per coordinate (1..=32) over the given
/// ranges; None outside the indexable limits or the ranges.
fn encode_in(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<HashBits> {
    if step == 0 || step > 32 || !valid_lon_lat(lon, lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let cells = (1u64 << step) as f64;
    let lat_off = (lat - lat_r.min) / (lat_r.max - lat_r.min) * cells;
    let lon_off = (lon - lon_r.min) / (lon_r.max - lon_r.min) * cells;
    // Truncation toward zero, as C's double → uint32 conversion.
    let bits = spread(lat_off as u32) | (spread(lon_off as u32) << 1);
    Some(HashBits { bits, step })
}

/// Encodes a position over the indexable (Web-Mercator) ranges.
pub fn encode(lon: f64, lat: f64, step: u8) -> Option<HashBits> {
    encode_in(LON_RANGE, LAT_RANGE, lon, lat, step)
}

/// The sorted-set score of a position: its 52-bit geohash. None outside the limits.
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode(lon, lat, STEP_MAX).map(HashBits::align52)
}

/// The rectangle a cell covers in the indexable ranges.
pub fn decode(hash: HashBits) -> Area {
    let cells = (1u64 << hash.step) as f64;
    // A 32-bit cell index, whose successor wraps as in Redis (only for scores past 2^52).
    let edges = |cell: u32| (f64::from(cell), f64::from(cell.wrapping_add(1)));
    let (lat_lo, lat_hi) = edges(squash(hash.bits));
    let (lon_lo, lon_hi) = edges(squash(hash.bits >> 1));
    let lat_scale = LAT_RANGE.max - LAT_RANGE.min;
    let lon_scale = LON_RANGE.max - LON_RANGE.min;
    Area {
        lat: Range {
            min: LAT_RANGE.min + (lat_lo / cells) * lat_scale,
            max: LAT_RANGE.min + (lat_hi / cells) * lat_scale,
        },
        lon: Range {
            min: LON_RANGE.min + (lon_lo / cells) * lon_scale,
            max: LON_RANGE.min + (lon_hi / cells) * lon_scale,
        },
    }
}

/// The position a score stands for: the centre of its 52-bit cell, clamped to the limits.
/// Any score decodes (Redis reads it as an unsigned integer), so plain sorted sets work too.
pub fn decode_score(score: f64) -> (f64, f64) {
    let area = decode(HashBits {
        bits: score as u64,
        step: STEP_MAX,
    });
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The cell `d` (±1) cells east (+) or west (-): only the longitude (odd) bits change.
fn move_x(hash: HashBits, d: i8) -> HashBits {
    let width = 64 - 2 * u32::from(hash.step);
    let x = hash.bits & 0xAAAA_AAAA_AAAA_AAAA;
    let y = hash.bits & 0x5555_5555_5555_5555;
    // Filling the other coordinate's bits makes the carry/borrow run through ours.
    let zz = 0x5555_5555_5555_5555u64 >> width;
    let x = if d > 0 {
        x.wrapping_add(zz + 1)
    } else {
        (x | zz).wrapping_sub(zz + 1)
    };
    HashBits {
        bits: (x & (0xAAAA_AAAA_AAAA_AAAAu64 >> width)) | y,
        step: hash.step,
    }
}

/// The cell `d` (±1) cells north (+) or south (-): only the latitude (even) bits change.
fn move_y(hash: HashBits, d: i8) -> HashBits {
    let width = 64 - 2 * u32::from(hash.step);
    let x = hash.bits & 0xAAAA_AAAA_AAAA_AAAA;
    let y = hash.bits & 0x5555_5555_5555_5555;
    let zz = 0xAAAA_AAAA_AAAA_AAAAu64 >> width;
    let y = if d > 0 {
        y.wrapping_add(zz + 1)
    } else {
        (y | zz).wrapping_sub(zz + 1)
    };
    HashBits {
        bits: x | (y & (0x5555_5555_5555_5555u64 >> width)),
        step: hash.step,
    }
}

/// A cell shifted by (dx, dy) cells, each -1, 0 or 1.
fn shifted(hash: HashBits, dx: i8, dy: i8) -> HashBits {
    let h = if dx == 0 { hash } else { move_x(hash, dx) };
    if dy == 0 {
        h
    } else {
        move_y(h, dy)
    }
}

/// The shift of each neighbour in [`search_areas`]'s order (after the centre): north, south,
/// east, west, north-east, north-west, south-east, south-west.
const NEIGHBOURS: [(i8, i8); 8] = [
    (0, 1),
    (0, -1),
    (1, 0),
    (-1, 0),
    (1, 1),
    (-1, 1),
    (1, -1),
    (-1, -1),
];

/// The cell step (bits per coordinate) whose cells are about as large as a search of
/// `range_m` metres around latitude `lat` needs; coarser towards the poles.
pub fn estimate_step(range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return STEP_MAX;
    }
    let mut range = range_m;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    // Leave a margin so the range is inside the 9 cells in most cases.
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

/// What a search covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ShapeKind {
    /// Points at most `radius` (in the query's unit) from the centre.
    Circle { radius: f64 },
    /// Points inside a `width` × `height` box (in the query's unit) centred on the centre.
    Box { width: f64, height: f64 },
}

/// A search shape: centre, extent, and metres per unit of the extent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub lon: f64,
    pub lat: f64,
    pub kind: ShapeKind,
    pub to_meters: f64,
}

impl Shape {
    /// The longitude/latitude bounding box: (min lon, min lat, max lon, max lat).
    fn bounding_box(&self) -> [f64; 4] {
        let (half_w, half_h) = match self.kind {
            ShapeKind::Circle { radius } => (radius, radius),
            ShapeKind::Box { width, height } => (width / 2.0, height / 2.0),
        };
        let height = self.to_meters * half_h;
        let width = self.to_meters * half_w;
        let lat_delta = height / EARTH_RADIUS_M / D_R;
        let lon_delta_top = width / EARTH_RADIUS_M / ((self.lat + lat_delta) * D_R).cos() / D_R;
        let lon_delta_bottom = width / EARTH_RADIUS_M / ((self.lat - lat_delta) * D_R).cos() / D_R;
        // The edge nearer the equator is the widest one.
        let lon_delta = if self.lat < 0.0 {
            lon_delta_bottom
        } else {
            lon_delta_top
        };
        [
            self.lon - lon_delta,
            self.lat - lat_delta,
            self.lon + lon_delta,
            self.lat + lat_delta,
        ]
    }

    /// The distance from the centre to the farthest point of the shape, in metres.
    fn reach_meters(&self) -> f64 {
        let r = match self.kind {
            ShapeKind::Circle { radius } => radius,
            ShapeKind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        };
        r * self.to_meters
    }

    /// The distance in metres from the centre to a point inside the shape, or None if the
    /// point is outside.
    pub fn distance_if_inside(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.kind {
            ShapeKind::Circle { radius } => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= radius * self.to_meters).then_some(d)
            }
            ShapeKind::Box { width, height } => {
                if lat_distance(lat, self.lat) > height * self.to_meters / 2.0
                    || distance(lon, lat, self.lon, lat) > width * self.to_meters / 2.0
                {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// The cells to scan: the centre's cell first, then its neighbours in [`NEIGHBOURS`]
    /// order; neighbours the shape cannot reach are [`HashBits::NONE`].
    pub fn search_areas(&self) -> [HashBits; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let mut step = estimate_step(self.reach_meters(), self.lat);
        let cells = |step| {
            let centre = encode(self.lon, self.lat, step).unwrap_or_default();
            let mut out = [centre; 9];
            for (o, &(dx, dy)) in out[1..].iter_mut().zip(&NEIGHBOURS) {
                *o = shifted(centre, dx, dy);
            }
            out
        };
        let mut areas = cells(step);
        // Near a cell's edge the estimate can be one step too fine: the neighbours must reach
        // past the bounding box on every side.
        let too_fine = decode(areas[1]).lat.max < max_lat
            || decode(areas[2]).lat.min > min_lat
            || decode(areas[3]).lon.max < max_lon
            || decode(areas[4]).lon.min > min_lon;
        if step > 1 && too_fine {
            step -= 1;
            areas = cells(step);
        }
        if step >= 2 {
            let centre = decode(areas[0]);
            let mut drop = |idx: [usize; 3]| idx.iter().for_each(|&i| areas[i] = HashBits::NONE);
            if centre.lat.min < min_lat {
                drop([2, 8, 7]);
            }
            if centre.lat.max > max_lat {
                drop([1, 5, 6]);
            }
            if centre.lon.min < min_lon {
                drop([4, 8, 6]);
            }
            if centre.lon.max > max_lon {
                drop([3, 7, 5]);
            }
        }
        areas
    }
}

/// The distance in metres between two latitudes along a meridian.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (lat2 * D_R - lat1 * D_R).abs()
}

/// The great-circle (haversine) distance in metres between two positions.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((lon2 * D_R - lon1 * D_R) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (lat1 * D_R, lat2 * D_R);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// The standard 11-character geohash string of a position (latitude range ±90, as other
/// geohash tools expect). Only 52 bits are known, so the last character is always '0'.
pub fn geohash_string(lon: f64, lat: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let bits = encode_in(LON_RANGE, STD_LAT_RANGE, lon, lat, STEP_MAX)
        .unwrap_or_default()
        .bits;
    let mut out = [b'0'; 11];
    for (i, c) in out[..10].iter_mut().enumerate() {
        *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    out
}

/// Metres per unit for a distance unit name (m, km, ft, mi; any case).
pub fn unit_to_meters(unit: &[u8]) -> Option<f64> {
    match unit.to_ascii_lowercase().as_slice() {
        b"m" => Some(1.0),
        b"km" => Some(1000.0),
        b"ft" => Some(0.3048),
        b"mi" => Some(1609.34),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PALERMO: (f64, f64) = (13.361389, 38.115556);
    const CATANIA: (f64, f64) = (15.087269, 37.502669);

    #[test]
    fn scores_and_decoding_match_redis() {
        // Scores, positions and strings as redis-server 7.0.15 reports them.
        assert_eq!(score_of(PALERMO.0, PALERMO.1), Some(3479099956230698));
        assert_eq!(score_of(CATANIA.0, CATANIA.1), Some(3479447370796909));
        let (lon, lat) = decode_score(3479099956230698.0);
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
        assert_eq!(&geohash_string(lon, lat), b"sqc8b49rny0");
        let (lon, lat) = decode_score(3479447370796909.0);
        assert_eq!(&geohash_string(lon, lat), b"sqdtr74hyu0");
    }

    #[test]
    fn limits() {
        assert!(score_of(180.0, LAT_MAX).is_some());
        assert!(score_of(-180.0, LAT_MIN).is_some());
        assert!(score_of(180.1, 0.0).is_none());
        assert!(score_of(0.0, 85.06).is_none());
        assert!(!valid_lon_lat(f64::INFINITY, 0.0));
        // Decoded positions never leave the limits, whatever the score.
        let (lon, lat) = decode_score(u64::MAX as f64);
        assert!(valid_lon_lat(lon, lat));
    }

    #[test]
    fn interleaving_round_trips() {
        for v in [0u32, 1, 0xdead_beef, u32::MAX, 0x0155_5555] {
            assert_eq!(squash(spread(v)), v);
            assert_eq!(spread(v) & 0xAAAA_AAAA_AAAA_AAAA, 0);
        }
    }

    #[test]
    fn neighbours_are_adjacent_cells() {
        let h = encode(PALERMO.0, PALERMO.1, 10).unwrap();
        let c = decode(h);
        let east = decode(shifted(h, 1, 0));
        assert_eq!(east.lon.min, c.lon.max);
        assert_eq!(east.lat, c.lat);
        let south_west = decode(shifted(h, -1, -1));
        assert_eq!(south_west.lon.max, c.lon.min);
        assert_eq!(south_west.lat.max, c.lat.min);
        // Wrapping around the antimeridian.
        let w = encode(-179.9, 0.0, 4).unwrap();
        assert_eq!(decode(shifted(w, -1, 0)).lon.max, 180.0);
    }

    #[test]
    fn score_ranges_cover_the_cell() {
        let h = encode(PALERMO.0, PALERMO.1, 8).unwrap();
        let (min, max) = h.score_range();
        let s = score_of(PALERMO.0, PALERMO.1).unwrap();
        assert!(min <= s && s < max);
        assert_eq!(max - min, 1 << (52 - 16));
    }

    #[test]
    fn step_estimation() {
        assert_eq!(estimate_step(0.0, 0.0), 26);
        assert_eq!(estimate_step(1.0, 0.0), 24);
        // 200 km doubles 7 times to pass the Mercator half-width: 1 + 7 - 2.
        assert_eq!(estimate_step(200_000.0, 0.0), 6);
        assert_eq!(estimate_step(200_000.0, 70.0), 5);
        assert_eq!(estimate_step(200_000.0, -85.0), 4);
        assert_eq!(estimate_step(f64::INFINITY, 0.0), 1);
    }

    #[test]
    fn distances() {
        // Between the stored (decoded) positions, as GEODIST reports it: 166274.1516 m.
        let (lon1, lat1) = decode_score(3479099956230698.0);
        let (lon2, lat2) = decode_score(3479447370796909.0);
        let d = distance(lon1, lat1, lon2, lat2);
        assert!((d - 166274.1516).abs() < 0.00005, "{d}");
        assert_eq!(distance(10.0, 1.0, 10.0, 2.0), lat_distance(1.0, 2.0));
        assert_eq!(distance(1.0, 2.0, 1.0, 2.0), 0.0);
    }

    #[test]
    fn search_area_contains_the_matches() {
        let shape = Shape {
            lon: 15.0,
            lat: 37.0,
            kind: ShapeKind::Circle { radius: 200.0 },
            to_meters: 1000.0,
        };
        let areas = shape.search_areas();
        for p in [PALERMO, CATANIA] {
            let s = score_of(p.0, p.1).unwrap();
            let (lon, lat) = decode_score(s as f64);
            assert!(shape.distance_if_inside(lon, lat).is_some());
            assert!(areas.iter().any(|a| {
                let (min, max) = a.score_range();
                !a.is_none() && min <= s && s < max
            }));
        }
        let boxed = Shape {
            kind: ShapeKind::Box {
                width: 10.0,
                height: 10.0,
            },
            ..shape
        };
        assert!(boxed.distance_if_inside(15.0, 37.04).is_some());
        assert!(boxed.distance_if_inside(15.0, 37.05).is_none());
        assert!(boxed.distance_if_inside(15.07, 37.0).is_none());
    }

    #[test]
    fn units() {
        assert_eq!(unit_to_meters(b"KM"), Some(1000.0));
        assert_eq!(unit_to_meters(b"mi"), Some(1609.34));
        assert_eq!(unit_to_meters(b"Ft"), Some(0.3048));
        assert_eq!(unit_to_meters(b"m"), Some(1.0));
        assert_eq!(unit_to_meters(b"yd"), None);
    }
}
